/**
 * What a `sluice run` of a file → window → file pipeline loads: only the modules of the
 * components and steps the file names. Every module loaded costs start-up CPU and resident
 * memory (a run of a 1 MB CSV is mostly start-up), so the client libraries, the other
 * connectors' specs and the operators of steps the file does not use must stay unloaded. The
 * child process records every module it resolves (a `module.registerHooks` resolve hook, which
 * sees `import` and `require` alike) and writes the list when it exits.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const bin = new URL('../bin/sluice.js', import.meta.url).pathname;
const root = new URL('../', import.meta.url).href;

/** Preloaded into the child: records resolved URLs, writes them to `SLUICE_TEST_MODULES` at exit. */
const HOOK = `
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const seen = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    seen.add(resolved.url);
    return resolved;
  },
});
process.on('exit', () => writeFileSync(process.env.SLUICE_TEST_MODULES, JSON.stringify([...seen])));
`;

/** Runs `sluice run` on `yaml` (written in a fresh folder with `files`); returns what it loaded. */
async function modulesOfRun(yaml: string, files: Record<string, string>, command: readonly string[] = [bin]) {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-startup-'));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    await writeFile(join(dir, 'p.yaml'), yaml);
    const list = join(dir, 'modules.json');
    const child = spawnSync(
      process.execPath,
      [
        '--import',
        `data:text/javascript,${encodeURIComponent(HOOK)}`,
        ...command,
        'run',
        join(dir, 'p.yaml'),
      ],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, SLUICE_TEST_MODULES: list } },
    );
    assert.equal(child.status, 0, child.stderr);
    const urls = JSON.parse(await readFile(list, 'utf8')) as string[];
    const output = await readFile(join(dir, 'out.jsonl'), 'utf8');
    // Paths inside the package (`src/…`, or `dist/…` when built) and package names of node_modules.
    const own = urls.filter((u) => u.startsWith(root)).map((u) => u.slice(root.length));
    const packages = new Set(
      urls.flatMap((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1] ?? []),
    );
    return { own, packages, output, urls };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const CSV =
  'ts,country,amount\n2024-01-01T00:00:10Z,SE,1.50\n2024-01-01T00:00:20Z,SE,2.25\n2024-01-01T00:01:30Z,NO,4\n';

const WINDOW_YAML = [
  'name: startup',
  'input:',
  '  file: { path: in.csv, format: csv }',
  'pipeline:',
  '  - window:',
  '      key: country',
  '      time: ts',
  '      tumbling: 1m',
  '      aggregate: { count: count(), amount: sum(amount) }',
  'output:',
  '  file: { path: out.jsonl, format: jsonl }',
  '',
].join('\n');

test('`sluice run` of a CSV file → window → JSONL file loads only what the file names', async () => {
  const { own, packages, output } = await modulesOfRun(WINDOW_YAML, { 'in.csv': CSV });
  // The run did its work, and the hook saw the modules it needed (so the checks below can fail).
  assert.equal(output.trim().split('\n').length, 2);
  assert.match(output, /"country":"SE".*"count":2/);
  for (const needed of ['src/connectors/file/spec.ts', 'src/time/spec.ts', 'src/config/build.ts'])
    assert.ok(own.includes(needed), `${needed} should be loaded; loaded: ${own.join(', ')}`);
  assert.ok(packages.has('zod') && packages.has('yaml'), [...packages].join(', '));

  // No client library, no format library the file does not use, no metrics server.
  const unwanted = [
    '@platformatic/kafka',
    'pg',
    'pg-copy-streams',
    'ioredis',
    'lmdb',
    'avsc',
    'protobufjs',
    'prom-client',
    '@marcbachmann/cel-js',
    'ajv',
  ];
  assert.deepEqual(
    unwanted.filter((p) => packages.has(p)),
    [],
  );
  // No other component's spec, and none of the modules of steps and commands the file does not
  // use. (`cli/run.ts` takes the stdout sink's `READER_GONE` reason from its module, which adds
  // nothing else: the file sink loads the same writers.)
  const notNamed = own.filter(
    (p) =>
      /^src\/connectors\/(?!file\/|stdio\/sink\.ts$)/.test(p) ||
      /^src\/(join|expr|state\/(?!open|backend))\//.test(p) ||
      /^src\/operators\/(?!map\.ts)/.test(p) ||
      [
        'src/checkpoint/setup.ts',
        'src/checkpoint/coordinator.ts',
        'src/config/docs.ts',
        'src/config/schema.ts',
        'src/cli/list.ts',
        'src/cli/http.ts',
        'src/components.ts',
      ].includes(p),
  );
  assert.deepEqual(notNamed, []);
});

/** Runs `sluice ARGS` with the module-recording hook; returns its stdout and what it loaded. */
function modulesOfCommand(args: readonly string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-startup-'));
  try {
    const list = join(dir, 'modules.json');
    const child = spawnSync(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(HOOK)}`, bin, ...args],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, SLUICE_TEST_MODULES: list } },
    );
    assert.equal(child.status, 0, child.stderr);
    const urls = JSON.parse(readFileSync(list, 'utf8')) as string[];
    return { stdout: child.stdout, urls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `sluice --version` and `--help` answer without the run path: no config loading, no pipeline,
// no zod or yaml (together ~170 modules and ~0.1 s of CPU from a checkout).
for (const args of [['--version'], ['--help'], ['kafka', 'topics', '--help']]) {
  test(`\`sluice ${args.join(' ')}\` loads neither the run path nor zod and yaml`, () => {
    const { stdout, urls } = modulesOfCommand(args);
    assert.match(stdout, args[0] === '--version' ? /^\d+\.\d+\.\d+/ : /Usage: sluice/);
    const heavy = urls.filter((u) =>
      /\/node_modules\/(zod|yaml)\/|\/src\/(config\/(build|load|check|yaml)|pipeline|cli\/run|core\/run)\.ts$/.test(
        u,
      ),
    );
    assert.deepEqual(heavy, []);
    // The hook saw the modules it did load (so the check above can fail).
    assert.ok(
      urls.some((u) => u.endsWith('/src/cli/main.ts')),
      urls.join('\n'),
    );
  });
}

// The published package's CLI is a bundle (scripts/build-cli.ts). It must keep the laziness above:
// its lazy imports are chunks, the modules `lazyModule` loads are initialised on first use, and
// the CommonJS client and format libraries are `require`d only then. A bundle that failed to
// build the partial registry would fall back to every component silently, so that is checked too.
test('the CLI bundle of a CSV → window run loads only the chunks the file needs', async () => {
  const out = join(fileURLToPath(root), 'test-artifacts', `cli-startup-bundle-${process.pid}`);
  try {
    const build = spawnSync(process.execPath, [fileURLToPath(new URL('scripts/build-cli.ts', root)), out], {
      encoding: 'utf8',
    });
    assert.equal(build.status, 0, build.stderr);
    const start = `const m = await import(${JSON.stringify(pathToFileURL(join(out, 'sluice.js')).href)}); m.exitProcess(await m.main(process.argv.slice(1)));`;
    const { packages, output, urls } = await modulesOfRun(WINDOW_YAML, { 'in.csv': CSV }, [
      '--input-type=module',
      '--eval',
      start,
    ]);
    assert.match(output, /"country":"SE".*"count":2/);
    const chunks = urls.filter((u) => u.includes('/cli-startup-bundle-')).map((u) => basename(u));
    assert.ok(chunks.includes('sluice.js'), chunks.join(', '));
    // Chunks take the name of their first module: the full registry and other connectors' specs.
    assert.deepEqual(
      chunks.filter((c) =>
        /^(components|schema|docs|list|http|setup|coordinator|kafka|postgres|redis|pulsar)-/.test(c),
      ),
      [],
    );
    assert.deepEqual([...packages], [], 'the bundle holds zod, yaml and commander; nothing else is needed');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
