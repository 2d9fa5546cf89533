/**
 * Which module defines each built-in component, so that `sluice run` and `sluice lint` load only
 * the spec modules a pipeline file names. A spec module loads its connector, and connectors load
 * their client libraries (`pg`, `ioredis`, …); loading every one of them for every run costs
 * resident memory a CSV-to-stdout job should not pay. `defaultRegistry` (`components.ts`) loads
 * every module of this one list, for `list`, `schema`, the docs and library users; a test checks
 * that each line names exactly the components its module defines.
 */
import { type ComponentSpec, Registry, specsIn } from './spec/registry.ts';

/** One spec module: the component names it defines (any kind) and how to load it. */
export interface ComponentModule {
  readonly names: readonly string[];
  readonly load: () => Promise<Readonly<Record<string, unknown>>>;
}

/** Every built-in spec module: the one list of built-in components. */
export const COMPONENT_MODULES: readonly ComponentModule[] = [
  { names: ['file'], load: () => import('./connectors/file/spec.ts') },
  { names: ['generate'], load: () => import('./connectors/generate/spec.ts') },
  { names: ['kafka'], load: () => import('./connectors/kafka/spec.ts') },
  { names: ['postgres'], load: () => import('./connectors/postgres/spec.ts') },
  { names: ['pulsar'], load: () => import('./connectors/pulsar/spec.ts') },
  { names: ['redis'], load: () => import('./connectors/redis/spec.ts') },
  { names: ['blackhole'], load: () => import('./connectors/blackhole/spec.ts') },
  { names: ['stdin', 'stdout'], load: () => import('./connectors/stdio/spec.ts') },
  { names: ['batch', 'throttle'], load: () => import('./operators/spec.ts') },
  { names: ['serial', 'dedupe', 'saga'], load: () => import('./operators/keyed-spec.ts') },
  { names: ['filter', 'map', 'route'], load: () => import('./expr/spec.ts') },
  { names: ['window'], load: () => import('./time/spec.ts') },
  { names: ['join'], load: () => import('./join/spec.ts') },
  { names: ['lookup'], load: loadLookupSpec },
  { names: ['mapAsync', 'shard', 'fanOut'], load: () => import('./operators/parallel-spec.ts') },
];

/**
 * The `lookup` step's module: its spec is built from the stores of `operators/lookup` and those
 * the PostgreSQL and Redis connectors declare, which only this layer may import together. Their
 * client libraries still load only when a lookup connects.
 */
async function loadLookupSpec(): Promise<Readonly<Record<string, unknown>>> {
  const [{ builtinLookupStores, lookupSpecWith }, { postgresLookupStore }, { redisLookupStore }] =
    await Promise.all([
      import('./operators/lookup/spec.ts'),
      import('./connectors/postgres/lookup.ts'),
      import('./connectors/redis/lookup.ts'),
    ]);
  lookupSpec ??= lookupSpecWith([...builtinLookupStores, postgresLookupStore, redisLookupStore]);
  return { lookupSpec };
}
let lookupSpec: ComponentSpec<'operator'> | undefined;

/**
 * A registry of the built-in components whose names appear in `words` (e.g. every key of a
 * pipeline file): only their modules are loaded. A word that names no component is ignored, so
 * a pipeline with a typo validates against a registry that lacks the typo's neighbours; callers
 * that report problems re-validate against `defaultRegistry` for the "did you mean" hints.
 *
 * @example
 * const registry = await registryFor(['input', 'file', 'output', 'stdout']);
 * registry.get('source', 'file') !== undefined; // true; kafka is not loaded
 */
export async function registryFor(words: Iterable<string>): Promise<Registry> {
  const wanted = new Set(words);
  const modules = COMPONENT_MODULES.filter((m) => m.names.some((n) => wanted.has(n)));
  const loaded = await Promise.all(modules.map((m) => m.load()));
  return new Registry().add(...loaded.flatMap((m) => specsIn(m)));
}

/**
 * Every mapping key in a parsed YAML value, at any depth (the words {@link registryFor} looks
 * for), plus every word of the `--set path=value` overrides, which can name components too.
 */
export function keysOf(value: unknown, sets: readonly string[] = []): Set<string> {
  const keys = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        keys.add(k);
        walk(x);
      }
    }
  };
  walk(value);
  // Every word of an override: its path (`input.kafka.topic`) and its value (`{kafka: {…}}`).
  for (const s of sets) for (const word of s.split(/[^A-Za-z0-9_-]+/)) if (word !== '') keys.add(word);
  return keys;
}
