/**
 * The package as users import it: build it, pack it, install the tarball into an empty project,
 * type-check a TypeScript file against `sluice`, `sluice/kafka`, `sluice/postgres`, `sluice/redis`
 * and `sluice/pulsar` (strict, `moduleResolution: nodenext`) and run it on this project's Node 24.
 * The file runs a file → file pipeline and checks its output, and constructs (without connecting)
 * the Kafka, PostgreSQL, Redis and Pulsar connectors and the `lookup` step of docs/joins.md. Every
 * entry of package.json `exports` must ship its `.d.ts`. Also checks that the tarball holds no test files,
 * that importing `sluice` loads no client library, and that the `sluice` command starts.
 * The package holds one copy of Sluice, the CLI bundle, whose entries `exports` names too: a
 * user's `module:` step importing `sluice` shares the command's classes (`Decimal`, `SluiceError`)
 * on the main thread and loads no second copy on worker threads.
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

// A split-parallel window: its worker thread runs the compiled worker module from dist/. A worker
// starts only for a file of 32 MiB or more a worker (split-window.ts), so each row carries a
// 240-byte column the window does not read (projection skips it).
const pad = 'x'.repeat(240);
const rows = Array.from({ length: 140_000 }, (_, i) => \`\${new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString()},k\${i % 3},\${pad}\\n\`);
writeFileSync(join(dir, 'ev.csv'), \`ts,k,pad\\n\${rows.join('')}\`);
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
  // The dashboard of `sluice run --http` is served from files beside the bundle's chunks.
  for (const asset of ['index.html', 'dashboard.js', 'dashboard.css']) {
    assert.ok(
      shipped.includes(`dist/cli-bundle/dashboard/${asset}`),
      `the tarball has no dist/cli-bundle/dashboard/${asset}`,
    );
  }
  // One copy of Sluice: the bundle's JavaScript and tsc's declarations, no other JavaScript.
  const otherJs = shipped.filter((f) => /^dist\/.*\.js$/.test(f) && !f.startsWith('dist/cli-bundle/'));
  assert.deepEqual(otherJs, [], 'the tarball ships JavaScript of Sluice outside dist/cli-bundle/');

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
    loaded.some((url) => url.includes('/node_modules/sluice/dist/cli-bundle/index.js')),
    'sluice was not resolved to the bundle (dist/cli-bundle/index.js)',
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
  const run = installedSluice(app, ['run', 'p.yaml'], {
    source: RESOLVE_HOOK,
    file: join(app, 'modules.json'),
  });
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

  // One copy of Sluice: a user's code that imports `sluice` gets the classes the command runs on.
  // A pipeline module's `SluiceError` is reported as such (the command checks `instanceof`).
  writeFileSync(join(app, 'check.mjs'), CHECK_MODULE);
  const check = installedSluice(app, ['run', 'check.mjs']);
  assert.equal(check.status, 2, `sluice run check.mjs: exit ${check.status}\n${check.stderr}`);
  assert.match(
    check.stderr,
    /^Error \[SLUICE_CONFIG\]: set MONEY_RATE to run this pipeline\n {2}variable: MONEY_RATE\n/,
  );
  // A `module:` step's `Decimal` amounts are written as decimals by the CSV sink (which checks
  // `instanceof Decimal`; another copy's Decimal was written as the JSON string `"1.6500"`).
  // Every thread, the `parallelism: 2` step's workers included, loads Sluice only from the
  // bundle (the main thread: every module, through a preloaded hook; a worker: what `sluice`
  // and its imports resolve to, recorded by the step's module), and `sluice` is the bundle's
  // entry.
  writeFileSync(join(app, 'money.csv'), MONEY_CSV);
  writeFileSync(join(app, 'money.mjs'), MONEY_STEP);
  for (const [yaml, out] of [
    ['money.yaml', 'money-out.csv'],
    ['money-parallel.yaml', 'money-parallel.jsonl'],
  ] as const) {
    writeFileSync(join(app, yaml), moneyYaml(out, yaml !== 'money.yaml'));
    const seen = join(app, `${yaml}.modules`);
    rmSync(seen, { force: true });
    const money = installedSluice(app, ['run', yaml], { source: THREAD_RESOLVE_HOOK, file: seen });
    assert.equal(money.status, 0, `sluice run ${yaml} failed:\n${money.stderr}`);
    const written = readFileSync(join(app, out), 'utf8');
    if (out.endsWith('.csv')) {
      assert.equal(
        written,
        'ts,country,amount\n2024-01-01T00:00:10Z,SE,1.6500\n2024-01-01T00:01:30Z,NO,4.40\n',
      );
    } else {
      assert.deepEqual(
        written
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { amount: unknown }).amount)
          .sort(),
        ['1.6500', '4.40'],
        written,
      );
    }
    const letters = readFileSync(join(app, out.replace(/\.\w+$/, '-dead.jsonl')), 'utf8')
      .trim()
      .split('\n');
    assert.equal(letters.length, 1, letters.join('\n'));
    assert.match(letters[0] ?? '', /not a decimal number: bad/);
    // "THREAD URL" lines: what each thread resolved inside the installed package.
    const byThread = new Map<string, string[]>();
    for (const line of readFileSync(seen, 'utf8').trim().split('\n')) {
      const [thread = '', url = ''] = line.split(' ');
      if (url.includes('/node_modules/sluice/')) byThread.set(thread, [...(byThread.get(thread) ?? []), url]);
    }
    const workers = [...byThread.keys()].filter((t) => t !== '0');
    assert.equal(
      workers.length,
      yaml === 'money.yaml' ? 0 : 2,
      `threads seen: ${[...byThread.keys()].join(', ')}`,
    );
    for (const [thread, urls] of byThread) {
      const elsewhere = urls.filter(
        (u) => !/\/node_modules\/sluice\/(dist\/cli-bundle\/|bin\/sluice\.js$)/.test(u),
      );
      assert.deepEqual(elsewhere, [], `thread ${thread} of ${yaml} loaded a second copy of Sluice`);
      if (thread === '0' && yaml !== 'money.yaml') continue;
      assert.ok(
        urls.some((u) => u.endsWith('/dist/cli-bundle/index.js')),
        `thread ${thread} of ${yaml}: \`import 'sluice'\` did not load the bundle's index.js:\n${urls.join('\n')}`,
      );
    }
  }
});

/**
 * Runs the `sluice` command installed in `app` with `args`; with `hook`, the module `source` is
 * preloaded (`--import`) and finds the file to record into in SLUICE_TEST_MODULES.
 */
function installedSluice(
  app: string,
  args: readonly string[],
  hook?: { source: string; file: string },
): SpawnSyncReturns<string> {
  return spawnSync(
    NODE,
    [
      ...(hook === undefined ? [] : ['--import', `data:text/javascript,${encodeURIComponent(hook.source)}`]),
      join(app, 'node_modules/sluice/bin/sluice.js'),
      ...args,
    ],
    {
      cwd: app,
      env: hook === undefined ? env : { ...env, SLUICE_TEST_MODULES: hook.file },
      encoding: 'utf8',
    },
  );
}

/** Records every module URL the main thread resolves; writes them to SLUICE_TEST_MODULES at exit. */
const RESOLVE_HOOK = `
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const seen = new Set();
registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.add(r.url); return r; } });
process.on('exit', () => writeFileSync(process.env.SLUICE_TEST_MODULES, JSON.stringify([...seen])));
`;
/** As {@link RESOLVE_HOOK}, in every thread (workers run `--import` too): appends "THREAD URL" lines. */
const THREAD_RESOLVE_HOOK = `
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
registerHooks({ resolve(s, c, next) { const r = next(s, c); appendFileSync(process.env.SLUICE_TEST_MODULES, threadId + ' ' + r.url + '\\n'); return r; } });
`;
const MONEY_CSV =
  'ts,country,amount\n2024-01-01T00:00:10Z,SE,1.50\n2024-01-01T00:00:20Z,SE,bad\n2024-01-01T00:01:30Z,NO,4\n';
/**
 * A user's `module:` step on Sluice's public classes: amounts × 1.10 as `Decimal`s, a
 * `SluiceError` for an amount that is not a number. On a worker thread (`SLUICE_AS_TEXT`), the
 * decimal goes back as its text: a class instance crosses threads as a plain object.
 */
const MONEY_STEP = `import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { isMainThread, threadId } from 'node:worker_threads';
// What \`sluice\` resolves to on this thread, and the modules that entry imports (a worker thread
// runs no \`--import\` preload of the command line, so the module records it itself).
const hooks = registerHooks({
  resolve(s, c, next) {
    const r = next(s, c);
    appendFileSync(process.env.SLUICE_TEST_MODULES, threadId + ' ' + r.url + '\\n');
    return r;
  },
});
const { Decimal } = await import('sluice');
hooks.deregister();
const rate = Decimal.from('1.10');
export default (r) => {
  const total = Decimal.from(r.amount).mul(rate);
  return { ...r, amount: isMainThread ? total : total.toString() };
};
`;
/**
 * A pipeline module (\`sluice run check.mjs\`) that stops with a {@link SluiceError} from
 * \`sluice\`: the command prints a configuration error (exit 2) for its own class, and an internal
 * error with a stack (exit 1) for another copy's.
 */
const CHECK_MODULE = `import { ErrorCode, SluiceError } from 'sluice';
export default () => {
  throw new SluiceError(ErrorCode.CONFIG, 'set MONEY_RATE to run this pipeline', { variable: 'MONEY_RATE' });
};
`;
/** The money pipeline into `out` (CSV or JSONL), dead letters beside it; `parallel`: on two worker threads. */
const moneyYaml = (out: string, parallel: boolean) => `name: money
input:
  file: { path: money.csv, format: csv }
pipeline:
  - module: ./money.mjs${parallel ? '\n    parallelism: 2\n    key: country' : ''}
output:
  file: { path: ${out}, format: ${out.endsWith('.csv') ? 'csv' : 'jsonl'} }
dlq:
  file: { path: ${out.replace(/\.\w+$/, '-dead.jsonl')}, format: jsonl }
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
