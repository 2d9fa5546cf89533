/**
 * Bundles the `sluice` command and the library entries (`sluice`, `sluice/kafka`, …: package.json
 * `exports` names files of this folder) into `dist/cli-bundle/` with esbuild, for the published
 * package: `npm run build` runs it after `tsc` (which emits only the `.d.ts` files `exports`
 * names as `types`), and `bin/sluice.js` starts the bundle when it finds no `src/` (a checkout
 * runs the TypeScript). One build, so the package holds one copy of every module: the command and
 * a user's module that imports `sluice` load the same chunks, hence the same classes (`Decimal`,
 * `SluiceError`, which the engine checks with `instanceof`). A second copy, as tsc's JavaScript
 * beside a bundle would be, gives the user's code classes the engine does not recognise.
 *
 * Why: a 1 MB CSV → window run is mostly start-up, and loading ~290 small modules (zod alone is
 * 95, yaml 72) costs more than the work. As one file plus the chunks its lazy imports split off, a
 * 1 MB run took ~85 ms less CPU and ~6 MiB less peak RSS than tsc's `dist/` (bench/README.md,
 * start-up).
 *
 * What the bundle holds and how the code's file-relative lookups keep working:
 * - Sluice's own modules, and the three libraries every command loads at start-up: `zod`, `yaml`
 *   and `commander`. Every other dependency (client libraries, native add-ons, format libraries)
 *   stays external and loads from `node_modules` on first use, as from `dist/`.
 * - Each `import()` becomes a chunk loaded when the import runs, so the laziness of
 *   `component-modules.ts` (only the components a file names) holds in the bundle too.
 * - `lazyModule(import.meta.url, './x.ts')` (`core/lazy-module.ts`) names its module by a path
 *   relative to its own file, which a bundle no longer has: each such module is an entry of the
 *   bundle (`lazy-….js`), {@link rewriteLazyModules} turns each call into a `require` of it, and
 *   the build fails if a call is left over.
 * - Worker threads start on `./split-window-worker.js` and `./step-worker.js` beside the module
 *   that starts them: both are entries of the bundle, and every chunk sits in the one folder.
 * - `cli/http.ts` serves `./dashboard/` beside itself: copied into the folder.
 * - `cli/main.ts` reads `../../package.json` for `--version`: the folder is two levels down too.
 *
 * Run by `npm run build`; alone: `node scripts/build-cli.ts [OUTDIR]` (default `dist/cli-bundle`).
 */
import { cpSync, existsSync, globSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = resolve(ROOT, process.argv[2] ?? 'dist/cli-bundle');
/** The dependencies every `sluice` command loads at start-up; the rest stay in `node_modules`. */
const BUNDLED = new Set(['zod', 'yaml', 'commander']);

/**
 * `lazyModule<T>(import.meta.url, 'PATH')` → a loader that `require`s PATH, which esbuild then
 * resolves at build time and bundles (initialised on the first call, as the original loads on
 * the first call). Returns the new text and how many calls it rewrote.
 */
function rewriteLazyModules(text: string, file: string): { text: string; count: number } {
  let count = 0;
  const out = text.replace(LAZY_CALL, (_, type: string, path: string) => {
    count++;
    const entry = lazyEntryName(join(dirname(file), path));
    return `((load: () => unknown) => { let m: unknown; return () => (m ??= load()) as ${type}; })(() => require('./${entry}.js'))`;
  });
  return { text: out, count };
}

const LAZY_CALL = /\blazyModule<([^>]+)>\(\s*import\.meta\.url,\s*'([^']+)'\s*,?\s*\)/g;

/** The bundle entry of a module `lazyModule` loads: `lazy-operators-batch` for src/operators/batch.ts. */
function lazyEntryName(file: string): string {
  return `lazy-${relative(join(ROOT, 'src'), file).replace(/\.ts$/, '').replaceAll('/', '-')}`;
}

/**
 * Every module a `lazyModule` call loads becomes an entry of its own, required (Node loads an ES
 * module synchronously with `require`) from the folder on first use, sharing the chunks of the
 * modules it imports with the rest of the bundle. Bundled into its caller's chunk instead, it
 * and everything it imports would be read and compiled on every run (measured: +27 ms CPU and
 * +5 MiB on a 1 MB run).
 */
function lazyEntries(): { in: string; out: string }[] {
  const entries = new Map<string, string>();
  for (const file of globSync('src/**/*.ts', { cwd: ROOT })) {
    if (file.endsWith('.test.ts') || file.endsWith('core/lazy-module.ts')) continue;
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(LAZY_CALL)) {
      const target = join(ROOT, dirname(file), m[2] ?? '');
      entries.set(lazyEntryName(target), relative(ROOT, target));
    }
  }
  return [...entries].map(([out, source]) => ({ in: source, out }));
}

/** Applies {@link rewriteLazyModules} to Sluice's sources; fails the build on a call it missed. */
const lazyModules: Plugin = {
  name: 'sluice-lazy-modules',
  setup(b) {
    // The entries above, loaded at run time from the bundle's folder.
    b.onResolve({ filter: /^\.\/lazy-[\w-]+\.js$/ }, (args) => ({ path: args.path, external: true }));
    b.onLoad({ filter: /\/src\/.*\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('lazyModule') || args.path.endsWith('/core/lazy-module.ts')) return undefined;
      const { text, count } = rewriteLazyModules(source, args.path);
      const calls = source.match(/\blazyModule</g)?.length ?? 0;
      if (count !== calls) {
        throw new Error(
          `${relative(ROOT, args.path)}: ${calls - count} \`lazyModule<T>(import.meta.url, '…')\` call(s) not in the form scripts/build-cli.ts rewrites; write them as the others are`,
        );
      }
      return { contents: text, loader: 'ts' };
    });
  },
};

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
};
const unbundled = Object.keys(pkg.dependencies).filter((d) => !BUNDLED.has(d));
/** The unbundled dependencies that are CommonJS packages (no `"type": "module"`). */
const commonJs = new Set(
  unbundled.filter(
    (d) =>
      (JSON.parse(readFileSync(join(ROOT, 'node_modules', d, 'package.json'), 'utf8')) as { type?: string })
        .type !== 'module',
  ),
);
const external = unbundled.filter((d) => !commonJs.has(d)).flatMap((d) => [d, `${d}/*`]);

/**
 * Loads CommonJS dependencies with `require` where the importing module initialises, not with a
 * static `import` at the top of its chunk. A module that `lazyModule` loads is bundled into its
 * caller's chunk (it must load synchronously), and an ES module chunk imports every external
 * package its modules import when it loads: `avsc` and `protobufjs` (some 60 modules) would load
 * on every run, as they did in a first build. A `require` stays inside the module's lazy
 * initialiser. (The ES module dependencies are not on such a path; `test/cli-startup.test.ts` run
 * on the bundle fails if one is.)
 */
const lazyCommonJs: Plugin = {
  name: 'sluice-lazy-commonjs',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      const name = args.path.startsWith('@')
        ? args.path.split('/').slice(0, 2).join('/')
        : (args.path.split('/')[0] ?? '');
      if (!commonJs.has(name)) return undefined;
      // The `require` inside the stand-in below is the real, external one.
      if (args.namespace === 'commonjs-external') return { path: args.path, external: true };
      return { path: args.path, namespace: 'commonjs-external' };
    });
    b.onLoad({ filter: /.*/, namespace: 'commonjs-external' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

/**
 * The library entries of package.json `exports` (`sluice`, `sluice/kafka`, …), each an entry of
 * this same build, named after its source (`src/kafka.ts` → `kafka.js`): a user's `module:` step
 * that imports `sluice` then loads the very chunks the command runs on, so a `Decimal` it returns
 * is the class the encoders check with `instanceof`, and a `SluiceError` it throws is one. A
 * second copy of Sluice in the package (tsc's JavaScript, as before) would give it other classes.
 * The build fails when `exports` names a file that is not one of these.
 */
const LIBRARY_ENTRIES = Object.values(
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> })
    .exports,
).flatMap((target) => {
  const file =
    typeof target === 'object' && target !== null ? (target as { import?: string }).import : undefined;
  if (file === undefined) return [];
  const m = /^\.\/dist\/cli-bundle\/([\w-]+)\.js$/.exec(file);
  if (m === null || !existsSync(join(ROOT, 'src', `${m[1]}.ts`))) {
    throw new Error(
      `package.json exports \`${file}\`: an entry must be ./dist/cli-bundle/NAME.js for a src/NAME.ts`,
    );
  }
  return [{ in: `src/${m[1]}.ts`, out: m[1] as string }];
});

rmSync(OUT, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: [
    { in: 'src/cli/main.ts', out: 'sluice' },
    ...LIBRARY_ENTRIES,
    { in: 'src/time/split-window-worker.ts', out: 'split-window-worker' },
    { in: 'src/operators/step-worker.ts', out: 'step-worker' },
    ...lazyEntries(),
  ],
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22.12',
  external,
  plugins: [lazyModules, lazyCommonJs],
  // yaml's ES module build: its Node build is CommonJS, and an `import('yaml')` of a bundled
  // CommonJS module has no named exports (`parse` would be undefined).
  alias: { yaml: join(ROOT, 'node_modules/yaml/browser/index.js') },
  // The CommonJS dependencies are loaded with `require` (above); an ES module has none.
  banner: {
    js: "import { createRequire as __sluiceCreateRequire } from 'node:module'; const require = __sluiceCreateRequire(import.meta.url);",
  },
  // Source maps keep stack traces pointing at src/ (Node reads them with --enable-source-maps).
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
cpSync(join(ROOT, 'src/cli/dashboard'), join(OUT, 'dashboard'), { recursive: true });
for (const needed of ['sluice.js', 'split-window-worker.js', 'step-worker.js', '../../package.json']) {
  if (!existsSync(join(OUT, needed))) throw new Error(`the CLI bundle has no ${needed} in ${OUT}`);
}
process.stdout.write(`Bundled the sluice command into ${relative(ROOT, OUT)}/\n`);
