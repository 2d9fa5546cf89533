/**
 * `npm run services -- up|down|status [NAME…]`: the one entry point that installs and starts
 * the real services tests and benchmarks need, on loopback, idempotently.
 *
 * `up` prints one line per service, `NAME ADDRESS`-style, the last line being the address of
 * the last service named (so `$(npm run -s services -- up redis | tail -1)` is its URL).
 * Without names, `up`/`down`/`status` act on every known service.
 */
import { chromium } from './services/chromium.ts';
import { kafka } from './services/kafka.ts';
import { postgres } from './services/postgres.ts';
import { pulsar } from './services/pulsar.ts';
import { redis } from './services/redis.ts';
import { registry } from './services/registry.ts';
import type { ServiceDef } from './services/service.ts';

const SERVICES: readonly ServiceDef[] = [kafka, postgres, pulsar, redis, registry, chromium];

function usage(): string {
  const names = SERVICES.map((s) => `  ${s.name.padEnd(10)} ${s.summary}`).join('\n');
  return `usage: npm run services -- up|down|status [NAME…]\n\nservices:\n${names}\n`;
}

function pick(names: string[]): ServiceDef[] {
  if (names.length === 0) return [...SERVICES];
  return names.map((n) => {
    const s = SERVICES.find((x) => x.name === n);
    if (!s) throw new Error(`unknown service \`${n}\`; known: ${SERVICES.map((x) => x.name).join(', ')}`);
    return s;
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...names] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(usage());
    return command === undefined ? 2 : 0;
  }
  const chosen = pick(names);
  switch (command) {
    case 'up':
      for (const s of chosen) {
        await s.install();
        await s.start();
        process.stderr.write(`${s.name} is up\n`);
        process.stdout.write(`${s.address()}\n`);
      }
      return 0;
    case 'down':
      for (const s of chosen) {
        await s.stop();
        process.stdout.write(`${s.name} stopped\n`);
      }
      return 0;
    case 'status': {
      let allUp = true;
      for (const s of chosen) {
        const up = await s.isUp();
        allUp &&= up;
        process.stdout.write(`${s.name.padEnd(10)} ${up ? 'up  ' : 'down'} ${s.address()}\n`);
        for (const line of s.details?.() ?? []) process.stdout.write(`${''.padEnd(16)}${line}\n`);
      }
      return allUp ? 0 : 1;
    }
    default:
      process.stderr.write(`unknown command \`${command}\`\n${usage()}`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`services: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
