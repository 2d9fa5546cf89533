/**
 * The package as users import it: build it, pack it, install the tarball into an empty project,
 * type-check a TypeScript file against `sluice`, `sluice/kafka`, `sluice/postgres`, `sluice/redis`
 * and `sluice/pulsar` (strict, `moduleResolution: nodenext`) and run it on this project's Node 24.
 * The file runs a file → file pipeline and checks its output, and constructs (without connecting)
 * the Kafka, PostgreSQL, Redis and Pulsar connectors and the `lookup` step of docs/joins.md. Every
 * entry of package.json `exports` must ship its `.d.ts`. Also checks that the tarball holds no test files,
 * that importing `sluice` loads no client library, and that the `sluice` command starts.
 *
 * Takes about a minute (the tarball's dependencies come from npm's cache or the registry).
 * By hand: `npm test -- test/package.test.ts`.
 */
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clientLibrariesIn, modulesLoadedBy } from './support/loaded-modules.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'node_modules', '.bin');
const NODE = join(BIN, 'node');
const TSC = join(BIN, 'tsc');
// npm is a Node script: with the project's .bin first on PATH it runs on the project's Node.
const env = { ...process.env, PATH: `${BIN}${delimiter}${process.env.PATH ?? ''}` };

/** Runs a step; fails the test with the step's name and its output when it exits non-zero. */
function step(what: string, command: string, args: readonly string[], cwd: string): string {
  const run: SpawnSyncReturns<string> = spawnSync(command, args, { cwd, env, encoding: 'utf8' });
  if (run.error !== undefined || run.status !== 0) {
    assert.fail(
      `${what} failed (\`${[command, ...args].join(' ')}\` in ${cwd}, exit ${run.status}${run.error ? `, ${run.error.message}` : ''}):\n${run.stdout}\n${run.stderr}`,
    );
  }
  return run.stdout;
}

/**
 * Type-checks the project in `cwd` with declaration files checked too (no `skipLibCheck`), so that
 * an error in sluice's own `.d.ts` fails. Errors inside other packages' declarations are passed
 * over: `@datadog/sketches-js` ships `.d.ts` files that do not compile, which only
 * `skipLibCheck` (tsc's default in a new project) hides.
 */
function typeCheck(cwd: string): void {
  const run = spawnSync(TSC, ['-p', 'tsconfig.json'], { cwd, env, encoding: 'utf8' });
  const errors = `${run.stdout}${run.stderr}`
    .split('\n')
    .filter((line) => /error TS\d+/.test(line))
    .filter((line) => !line.startsWith('node_modules/') || line.startsWith('node_modules/sluice/'));
  if (
    run.error !== undefined ||
    (run.status !== 0 && errors.length === 0 && !/error TS\d+/.test(run.stdout))
  ) {
    assert.fail(
      `type-checking app.ts could not run (exit ${run.status}): ${run.error?.message ?? run.stderr}`,
    );
  }
  assert.deepEqual(errors, [], `type-checking app.ts against the installed package (tsc in ${cwd}) failed`);
}

/** The user's program: only public imports, strict types, runs as it is on Node 24. */
const APP = `
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Batch,
  fileSink,
  fileSource,
  type Logger,
  lookup,
  Pipeline,
  type RunSummary,
  type Sink,
  windowOperator,
} from 'sluice';
import { type KafkaSink, type KafkaSourceConfig, kafkaSink, kafkaSource } from 'sluice/kafka';
import { type PostgresSinkConfig, postgresLookup, postgresSink, postgresSource } from 'sluice/postgres';
import { type PulsarSinkConfig, pulsarSink, pulsarSource } from 'sluice/pulsar';
import { redisLookup, redisSink, redisSource } from 'sluice/redis';

interface Login {
  id: number;
  risk: number;
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-app-'));
writeFileSync(join(dir, 'in.jsonl'), '{"id":1,"risk":10}\\n{"id":2,"risk":90}\\n{"id":3,"risk":70}\\n');
let batches = 0;
const counting: Sink<unknown> = {
  write(batch: Batch<unknown>) {
    batches += batch.records.length > 0 ? 1 : 0;
  },
};
const p = new Pipeline('app');
const risky = p
  .from(fileSource({ path: join(dir, 'in.jsonl'), format: 'jsonl' }))
  .map((r) => r as Login)
  .filter((r) => r.risk > 50)
  .map((r) => ({ id: r.id }));
risky.to(fileSink({ path: join(dir, 'out.jsonl'), format: 'jsonl' }));
risky.to(counting);
const summary: RunSummary = await p.run().done;
assert.equal(readFileSync(join(dir, 'out.jsonl'), 'utf8'), '{"id":2}\\n{"id":3}\\n');
assert.ok(batches > 0, 'the custom sink saw no batch');

// A split-parallel window: its worker thread runs the compiled worker module from dist/.
const rows = Array.from({ length: 12_000 }, (_, i) => \`\${new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString()},k\${i % 3}\\n\`);
writeFileSync(join(dir, 'ev.csv'), \`ts,k\\n\${rows.join('')}\`);
const said: string[] = [];
const log: Logger = { info: (m) => said.push(m), warn: (m) => said.push(m), error: (m) => said.push(m) };
const counted = async (parallelism: number) => {
  const w = new Pipeline('split');
  w.from(fileSource({ path: join(dir, 'ev.csv'), format: 'csv' }))
    .via(windowOperator({ key: ['k'], time: 'ts', tumbling: '1m', aggregate: { n: 'count()' }, parallelism }))
    .to(fileSink({ path: join(dir, \`win-\${parallelism}.jsonl\`), format: 'jsonl' }));
  await w.run({ log }).done;
  return readFileSync(join(dir, \`win-\${parallelism}.jsonl\`), 'utf8');
};
assert.equal(await counted(2), await counted(1));
assert.ok(said.some((m) => m.includes('ran split-parallel on 2 threads')), said.join('\\n'));

// Constructed, never opened: nothing connects. The same config as YAML, defaults filled in.
const brokers = ['127.0.0.1:1'];
const sourceConfig: KafkaSourceConfig = { brokers, topic: 'in', group: 'app', start: 'earliest' };
const source = kafkaSource(sourceConfig);
const parallel = kafkaSource({
  brokers, topic: 'in', group: 'app', parallel: { mode: 'key', concurrency: 4, step: async (r: unknown) => r },
});
const sink: KafkaSink = kafkaSink({ brokers, topic: 'out', compression: 'none', linger: '10ms' });
const pgConfig: PostgresSinkConfig = { url: 'postgres://127.0.0.1:1/app', table: 'logins' };
const pg = postgresSink(pgConfig);
const pgSource = postgresSource({ url: 'postgres://127.0.0.1:1/app', table: 'logins', column: 'id' });
const redisIn = redisSource({ url: 'redis://127.0.0.1:1', stream: 'in', group: 'app' });
const redisOut = redisSink({ url: 'redis://127.0.0.1:1', stream: 'out' });
const pulsarConfig: PulsarSinkConfig = { url: 'http://127.0.0.1:1', topic: 'out' };
const pulsarOut = pulsarSink(pulsarConfig);
const pulsarIn = pulsarSource({ url: 'http://127.0.0.1:1', topic: 'in', subscription: 'app' });
// The lookup step as docs/joins.md shows it, with a PostgreSQL and a Redis store.
const enrich = lookup({
  provider: postgresLookup({ url: 'postgres://127.0.0.1:1/app', query: 'SELECT id, tier FROM users WHERE id = ANY($1)', keyColumn: 'id' }),
  key: 'user', into: 'profile', concurrency: 4,
});
const enrichRedis = lookup({ provider: redisLookup({ url: 'redis://127.0.0.1:1', command: 'get' }), key: 'user' });
// A bad config names every problem at once.
assert.throws(
  () => kafkaSink({ brokers, topic: 'out', linger: 'soon', acks: 'some' } as never),
  (err: Error) => /linger/.test(err.message) && /acks/.test(err.message),
);
for (const stage of [source, parallel, sink, pg, pgSource, redisIn, redisOut, pulsarOut, pulsarIn]) assert.equal(typeof stage.close, 'function');
assert.ok(enrich !== undefined && enrichRedis !== undefined);
assert.equal(pg.rowsWritten, 0);
console.log(\`ok \${summary.recordsWritten}\`);
`;

const work = mkdtempSync(join(tmpdir(), 'sluice-package-'));
after(() => rmSync(work, { recursive: true, force: true }));

it('installs from its tarball, type-checks and runs as a dependency', { timeout: 300_000 }, () => {
  // No dist/ beforehand: `npm pack` must build it itself (the `prepack` script), or the tarball
  // could not be imported.
  rmSync(join(ROOT, 'dist'), { recursive: true, force: true });
  const packOutput = step(
    'packing (npm pack, which builds through prepack)',
    'npm',
    ['pack', '--json', '--pack-destination', work],
    ROOT,
  );
  // The build's own output may come first; the JSON report is the part from its `[` line on.
  const packed = JSON.parse(packOutput.slice(packOutput.search(/^\[/m))) as {
    filename: string;
    files: { path: string }[];
  }[];
  const tarball = packed[0];
  assert.ok(tarball !== undefined, 'npm pack --json returned no package');
  const shipped = tarball.files.map((f) => f.path);
  const testFiles = shipped.filter((f) => /\.test\.|test-helpers|test-registry|harness/.test(f));
  assert.deepEqual(testFiles, [], 'the tarball ships test files; exclude them in tsconfig.build.json');
  // Every entry of `exports` ships the files it names (`types` and `import`).
  const exportsField = (
    JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, string | Record<string, string>>;
    }
  ).exports;
  for (const [entry, target] of Object.entries(exportsField)) {
    for (const file of typeof target === 'string' ? [target] : Object.values(target)) {
      assert.ok(
        shipped.includes(file.replace(/^\.\//, '')),
        `the tarball has no ${file} (exports \`${entry}\`)`,
      );
    }
  }
  // The dashboard of `sluice run --http` is served from files beside dist/cli/http.js.
  for (const asset of ['index.html', 'dashboard.js', 'dashboard.css']) {
    assert.ok(
      shipped.includes(`dist/cli/dashboard/${asset}`),
      `the tarball has no dist/cli/dashboard/${asset}`,
    );
  }

  const app = join(work, 'app');
  step('making the project folder', 'mkdir', ['-p', app], work);
  writeFileSync(
    join(app, 'package.json'),
    `${JSON.stringify({ name: 'app', private: true, type: 'module' })}\n`,
  );
  step(
    'installing the tarball (npm i)',
    'npm',
    [
      'install',
      join(work, tarball.filename),
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
    ],
    app,
  );
  writeFileSync(join(app, 'app.ts'), APP);
  writeFileSync(
    join(app, 'tsconfig.json'),
    `${JSON.stringify({
      compilerOptions: {
        target: 'es2024',
        lib: ['es2024'],
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        noEmit: true,
        erasableSyntaxOnly: true,
        verbatimModuleSyntax: true,
        // Node's types from this project: the user's project would have its own @types/node.
        typeRoots: [join(ROOT, 'node_modules', '@types')],
        types: ['node'],
      },
      files: ['app.ts'],
    })}\n`,
  );
  typeCheck(app);
  const out = step('running app.ts on Node 24', NODE, ['app.ts'], app);
  assert.match(out, /^ok \d+$/m, `app.ts printed ${JSON.stringify(out)}`);

  const loaded = modulesLoadedBy(['sluice'], app, NODE);
  assert.ok(
    loaded.some((url) => url.includes('/node_modules/sluice/dist/index.js')),
    'sluice was not resolved to dist/',
  );
  assert.deepEqual(clientLibrariesIn(loaded), [], 'importing the installed `sluice` loads a client library');

  const list = step(
    'running the sluice command (sluice list)',
    NODE,
    [join(app, 'node_modules/sluice/bin/sluice.js'), 'list'],
    app,
  );
  assert.match(list, /kafka/, 'sluice list names no kafka component');
  assert.ok(readFileSync(join(app, 'node_modules/sluice/package.json'), 'utf8').includes('"./kafka"'));

  // The command runs from its bundle (scripts/build-cli.ts): zod, yaml and commander inside it,
  // a window and a `module:` step on worker threads (worker entries beside the bundle, the step's
  // module loaded by the bundle's rewrite of `lazyModule`), with the right output.
  for (const file of ['sluice.js', 'split-window-worker.js', 'step-worker.js', 'dashboard/index.html']) {
    assert.ok(shipped.includes(`dist/cli-bundle/${file}`), `the tarball has no dist/cli-bundle/${file}`);
  }
  const version = step(
    'sluice --version',
    NODE,
    [join(app, 'node_modules/sluice/bin/sluice.js'), '--version'],
    app,
  );
  assert.equal(version.trim(), JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  writeFileSync(join(app, 'in.csv'), BUNDLE_RUN_CSV);
  writeFileSync(join(app, 'step.mjs'), BUNDLE_RUN_STEP);
  writeFileSync(join(app, 'p.yaml'), BUNDLE_RUN_YAML);
  const run = spawnSync(
    NODE,
    [
      '--import',
      `data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`,
      join(app, 'node_modules/sluice/bin/sluice.js'),
      'run',
      'p.yaml',
    ],
    { cwd: app, env: { ...env, SLUICE_TEST_MODULES: join(app, 'modules.json') }, encoding: 'utf8' },
  );
  assert.equal(run.status, 0, `sluice run p.yaml (the CLI bundle) failed:\n${run.stderr}`);
  const output = readFileSync(join(app, 'out.jsonl'), 'utf8').trim().split('\n');
  assert.deepEqual(
    output
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .map((r) => [r.country, r.count, r.amount]),
    [
      ['SE', 2, '375'],
      ['NO', 1, '400'],
    ],
    output.join('\n'),
  );
  const urls = JSON.parse(readFileSync(join(app, 'modules.json'), 'utf8')) as string[];
  assert.ok(
    urls.some((u) => u.endsWith('/node_modules/sluice/dist/cli-bundle/sluice.js')),
    `sluice run did not start the bundle; it loaded:\n${urls.join('\n')}`,
  );
  const unbundled = urls.filter((u) =>
    /\/node_modules\/(zod|yaml|commander)\/|\/sluice\/dist\/(?!cli-bundle\/)/.test(u),
  );
  assert.deepEqual(unbundled, [], 'the CLI bundle loaded modules it should hold itself');
});

/** Records every module URL the main thread resolves; writes them to SLUICE_TEST_MODULES at exit. */
const RESOLVE_HOOK = `
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const seen = new Set();
registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.add(r.url); return r; } });
process.on('exit', () => writeFileSync(process.env.SLUICE_TEST_MODULES, JSON.stringify([...seen])));
`;
const BUNDLE_RUN_CSV =
  'ts,country,amount\n2024-01-01T00:00:10Z,SE,1.50\n2024-01-01T00:00:20Z,SE,2.25\n2024-01-01T00:01:30Z,NO,4\n';
/** A per-record function for a `module:` step on worker threads: amounts in hundredths. */
const BUNDLE_RUN_STEP =
  'export default (r) => ({ ...r, amount: String(Math.round(Number(r.amount) * 100)) });\n';
const BUNDLE_RUN_YAML = `name: bundle
input:
  file: { path: in.csv, format: csv }
pipeline:
  - module: ./step.mjs
    parallelism: 2
    key: country
  - window:
      key: country
      time: ts
      tumbling: 1m
      aggregate: { count: count(), amount: sum(amount) }
output:
  file: { path: out.jsonl, format: jsonl }
`;
