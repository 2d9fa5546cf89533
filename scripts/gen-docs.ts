/**
 * Writes the generated references: `docs/components.md` from the default registry's specs,
 * `docs/metrics.md` from the metric catalog (`src/metrics/catalog.ts`), and
 * the TypeScript API reference `docs/api/` (Markdown) from the public entry modules `src/index.ts`,
 * `src/kafka.ts`, `src/postgres.ts`, `src/pulsar.ts` and `src/redis.ts`, with TypeDoc and typedoc-plugin-markdown
 * (settings in `typedoc.json`).
 *
 * `node scripts/gen-docs.ts --check` writes nothing and exits 1 when a checked-in file differs
 * from what is generated (for CI; `test/cli-docs.test.ts` checks components.md too).
 *
 * TypeDoc needs TypeScript's JavaScript API, which TypeScript 7 (the project's compiler, a native
 * binary) does not have, so TypeDoc runs through `npx` with the pinned TypeScript 6 below, apart
 * from the project's own dependencies. The first run downloads them into npm's cache.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, globSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultRegistry } from '../src/components.ts';
import { componentsMarkdown } from '../src/config/docs.ts';
import { metricsMarkdown } from '../src/metrics/catalog.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COMPONENTS = join(ROOT, 'docs/components.md');
const METRICS_DOC = join(ROOT, 'docs/metrics.md');
const API = join(ROOT, 'docs/api');
/** The tools that generate docs/api/; a new version may change the output, so they are pinned. */
const TYPEDOC = ['typedoc@0.28.20', 'typedoc-plugin-markdown@4.14.1', 'typescript@6.0.3'];

const check = process.argv.includes('--check');
const stale: string[] = [];

const components = componentsMarkdown(defaultRegistry);
if (check) {
  if (readOrEmpty(COMPONENTS) !== components) stale.push('docs/components.md');
} else {
  writeFileSync(COMPONENTS, components);
  process.stdout.write(`Wrote ${COMPONENTS}\n`);
}

const metrics = metricsMarkdown();
if (check) {
  if (readOrEmpty(METRICS_DOC) !== metrics) stale.push('docs/metrics.md');
} else {
  writeFileSync(METRICS_DOC, metrics);
  process.stdout.write(`Wrote ${METRICS_DOC}\n`);
}

const generated = mkdtempSync(join(tmpdir(), 'sluice-api-docs-'));
try {
  const packages = TYPEDOC.map((p) => `--package=${p}`);
  const run = spawnSync(
    'npx',
    ['--yes', ...packages, '--', 'typedoc', '--options', 'typedoc.json', '--out', generated],
    { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (run.error !== undefined || run.status !== 0) {
    process.stderr.write(`generating docs/api/ with ${TYPEDOC.join(', ')} failed (exit ${run.status})\n`);
    process.exit(1);
  }
  if (check) {
    stale.push(...differences(generated, API).map((f) => `docs/api/${f}`));
  } else {
    rmSync(API, { recursive: true, force: true });
    cpSync(generated, API, { recursive: true });
    process.stdout.write(`Wrote ${API}/\n`);
  }
} finally {
  rmSync(generated, { recursive: true, force: true });
}

if (stale.length > 0) {
  process.stderr.write(`Out of date: ${stale.join(', ')}; regenerate with \`npm run docs\`\n`);
  process.exitCode = 1;
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Files (relative paths) that differ between two folders, or are in only one of them. */
function differences(a: string, b: string): string[] {
  const files = new Set([...globSync('**/*', { cwd: a }), ...globSync('**/*', { cwd: b })]);
  return [...files]
    .filter((f) => !f.endsWith('/') && readOrEmpty(join(a, f)) !== readOrEmpty(join(b, f)))
    .sort();
}
