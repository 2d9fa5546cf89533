/**
 * `npm test`: starts the real services the integration tests need (through
 * scripts/services.ts), then runs every test file with Node's test runner.
 *
 * Unit tests sit beside the code (`src/**\/*.test.ts`); cross-cutting and integration tests
 * live in `test/`. An integration test names its service in its file name
 * (`*.kafka.it.test.ts`; several joined by `+`, `*.kafka+registry.it.test.ts`); this script brings up each service named that way.
 */
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';

const files = [...globSync('src/**/*.test.ts'), ...globSync('test/**/*.test.ts')].sort();
// `npm test -- a.test.ts b.test.ts` needs only the services those files name; with no file
// named (no arguments, or only flags or folders) every test may run, so every service is started.
const named = process.argv.slice(2).filter((a) => a.endsWith('.test.ts'));
const services = new Set<string>();
for (const f of named.length > 0 ? named : files) {
  const m = /\.([a-z0-9+-]+)\.it\.test\.ts$/.exec(f);
  if (m?.[1]) for (const s of m[1].split('+')) services.add(s);
}
if (services.size > 0) {
  const up = spawnSync(process.execPath, ['scripts/services.ts', 'up', ...services], { stdio: 'inherit' });
  if (up.status !== 0) process.exit(up.status ?? 1);
}
// --test-force-exit: a test file whose test timed out while a client's socket stays open (a broker
// close that never returns) would otherwise keep its process, and CI, waiting forever.
const args = [
  '--test',
  '--test-concurrency=2',
  '--test-timeout=120000',
  '--test-force-exit',
  ...process.argv.slice(2),
];
const run = spawnSync(process.execPath, [...args, ...(process.argv.length > 2 ? [] : files)], {
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
