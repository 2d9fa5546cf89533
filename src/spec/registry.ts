/**
 * Component specs and the registry that holds them.
 *
 * A component (connector or operator) is declared once as a {@link ComponentSpec}: its
 * name, a one-line summary, a zod schema whose field `.describe()` texts are the docs, and a
 * `create` factory. The same spec validates YAML, generates the JSON Schema (`sluice schema`)
 * and the reference docs (`sluice list`), and builds the stage. Connectors are nouns (`file`),
 * operators are verbs (`batch`).
 */
import type { z } from 'zod';
import type { BufferOptions } from '../core/graph.ts';
import type { RecordMeta } from '../core/message.ts';
import type { Operator, Sink, Source } from '../core/stage.ts';

/** Where a component may appear in a pipeline file. */
export type ComponentKind = 'source' | 'sink' | 'operator';

/** How settled a component's config and behaviour are. */
export type Stability = 'stable' | 'beta' | 'experimental';

/** What a factory gets besides its own config. */
export interface BuildContext {
  /** Directory relative paths in the config resolve against (the pipeline file's folder). */
  readonly baseDir: string;
  /** The pipeline's `name`. */
  readonly pipelineName: string;
  /** The stage name the runtime will use. */
  readonly stageName: string;
  /** True when a sink is built as the pipeline's `dlq:` output: its records are `DeadLetter`s. */
  readonly dlq?: boolean;
  /**
   * Sources whose spec {@link ComponentSpec.runsFirstStep} with this config: the pipeline's first
   * step, as a per-record function, for the source to run itself.
   */
  readonly firstStep?: RecordStep;
}

/**
 * A per-record step as a function: resolves to the record to emit, an array of records, or
 * `undefined` / `null` for none; a rejection (or throw) dead-letters the record. `signal` aborts
 * when the run is cancelled.
 */
export type RecordStep = (record: unknown, meta: RecordMeta, signal: AbortSignal) => unknown;

/** The stage type a component kind builds. */
export type StageOf<K extends ComponentKind> = K extends 'source'
  ? Source
  : K extends 'sink'
    ? Sink
    : Operator;

/** One component, declared once. `C` is the parsed (output) config type of `config`. */
export interface ComponentSpec<K extends ComponentKind = ComponentKind, C = unknown> {
  /** The YAML key, e.g. `file`, `generate`, `batch`. camelCase. */
  readonly name: string;
  readonly kind: K;
  readonly stability: Stability;
  /** One sentence for `sluice list` and the docs. */
  readonly summary: string;
  /** Longer Markdown description (optional). */
  readonly description?: string;
  /** Schema of the config; field docs via `.describe()`, defaults via `.default()`. */
  readonly config: z.ZodType<C>;
  /** What the component offers the engine beyond its stage interface; see {@link ComponentCapabilities}. */
  readonly capabilities?: ComponentCapabilities;
  /** Runnable YAML examples of the component's config (the value under its key). */
  readonly examples?: readonly { readonly title: string; readonly yaml: string }[];
  /**
   * Operators only: the side output ports (besides `out` and `dlq`) the component emits on
   * with this config — a `route`'s route names, a `window`'s `late`. A pipeline file connects
   * each to the `outputs:` entry of the same name, and `sluice lint` reports a port that
   * `outputs:` lacks. Omit it, or return undefined, when the ports cannot be known from the
   * config (e.g. rules loaded at run time): every `outputs:` entry no step declares is then
   * connected to this step.
   */
  ports?(config: C): readonly string[] | undefined;
  /**
   * Sources only: true when, with this config, the source runs the pipeline's first step itself
   * (the `kafka` source's `parallel`: in-partition parallel processing that commits only what is
   * finished). A pipeline file's builder then requires that step to be a `module:` step exporting
   * a per-record function, hands it to `create` as {@link BuildContext.firstStep}, and leaves it
   * out of the graph.
   */
  runsFirstStep?(config: C): boolean;
  /**
   * Operators only: the named inputs the step takes from entries of the file's `inputs:` (a
   * `join`'s `left` and `right`), each as the input name the operator tells batches apart by
   * (`Operator.process`'s `input`) and the `inputs:` entry that feeds it. A pipeline file's
   * builder connects them; such a step must be the first of `pipeline`.
   */
  inputs?(config: C): readonly { readonly input: string; readonly from: string }[];
  /**
   * Operators only: the nested step lists of a composite step (`shard`, `fanOut`), written as
   * in `pipeline:`. The pipeline file's checker validates them as steps and the builder wires
   * them around the stage `create` builds; see {@link Segments}.
   */
  segments?(config: C): Segments;
  /**
   * Builds the stage from a validated config. Called by `sluice lint` too, so it must not do
   * I/O or start anything: the stage's `open` does that.
   */
  create(config: C, ctx: BuildContext): StageOf<K>;
}

/** Steps nested in a composite step: raw entries as in `pipeline:`, and where they stand. */
export interface NestedSteps {
  /** Path of the list inside the component's config, e.g. `['steps']`. */
  readonly path: readonly PropertyKey[];
  readonly steps: readonly unknown[];
}

/**
 * How a composite step's nested steps are wired ({@link ComponentSpec.segments}).
 * `copies`: one copy of `steps` after each of the stage's output ports `ports` (a `shard`'s
 * `shard-<i>`), their outputs merged into the main line, which goes on from the merge.
 * `branches`: each branch gets every batch through its own buffer (`buffer`: size and overflow),
 * runs its steps and ends at the side output of its `name` (`outputs.<name>`); the main line goes
 * on from the stage itself.
 */
export type Segments =
  | { readonly layout: 'copies'; readonly ports: readonly string[]; readonly steps: NestedSteps }
  | {
      readonly layout: 'branches';
      readonly branches: readonly (NestedSteps & {
        readonly name: string;
        readonly buffer?: BufferOptions | undefined;
      })[];
    };

/**
 * What a component offers beyond its stage interface, declared once on its spec. The pipeline
 * builder checks pipeline-wide rules against these (`config/build.ts`), never against component
 * names, so a new connector gets the same checks by declaring the same capability.
 */
export interface ComponentCapabilities {
  /**
   * Source: its records and positions name partitions as `core/partitions.ts` says, and it
   * drives `ctx.partitionState`; so `checkpoint: { scope: partition }` can keep state per
   * partition of this input (the builder refuses partition scope for any other input).
   */
  readonly partitionedPositions?: true;
  /**
   * Source: its input cannot be read again (a pipe, a terminal), so no position can resume it.
   * With `checkpoint:` the pipeline then needs `wal: true` — the write-ahead log keeps what was
   * read after the last checkpoint and replays it —; the builder refuses it otherwise, at lint
   * and at start.
   */
  readonly readOnce?: true;
  /**
   * Sink: with `exactlyOnce: true` it commits the consumed offsets of the run's sources of this
   * family (`kafka`: consumer-group offsets) inside its own transactions, and those sources
   * commit nothing themselves. At most one such sink per family in a pipeline (the builder
   * refuses a second).
   */
  readonly commitsSourceOffsets?: string;
}

/**
 * Declares a component with full type inference of its config.
 *
 * @example
 * export const blackholeSink = defineComponent({
 *   name: 'null', kind: 'sink', stability: 'stable', summary: 'Discards every record.',
 *   config: z.object({}), create: () => ({ write() {} }),
 * });
 */
export function defineComponent<K extends ComponentKind, S extends z.ZodType>(
  spec: ComponentSpec<K, z.output<S>> & { config: S },
): ComponentSpec<K, z.output<S>> & { readonly config: S } {
  return spec;
}

/** A set of component specs, looked up by kind and name. */
export class Registry {
  private readonly specs = new Map<string, ComponentSpec>();

  /** Adds specs; a second spec with the same kind and name is an error. */
  // The config type differs per spec; `any` is the one type every spec's config fits both ways.
  // biome-ignore lint/suspicious/noExplicitAny: heterogeneous specs
  add(...specs: ComponentSpec<ComponentKind, any>[]): this {
    for (const spec of specs) {
      const key = `${spec.kind}:${spec.name}`;
      if (this.specs.has(key)) throw new Error(`component ${key} is registered twice`);
      this.specs.set(key, spec as unknown as ComponentSpec);
    }
    return this;
  }

  /** The spec of `name` among components of `kind`, or undefined. */
  get<K extends ComponentKind>(kind: K, name: string): ComponentSpec<K> | undefined {
    return this.specs.get(`${kind}:${name}`) as ComponentSpec<K> | undefined;
  }

  /** Every spec of `kind` (or all), sorted by name. */
  list(kind?: ComponentKind): ComponentSpec[] {
    return [...this.specs.values()]
      .filter((s) => kind === undefined || s.kind === kind)
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}

const SPEC_KINDS: readonly ComponentKind[] = ['source', 'sink', 'operator'];

/** The exports of `mod` that are component specs (name, kind, config schema and `create`). */
export function specsIn(mod: Readonly<Record<string, unknown>>): ComponentSpec[] {
  const found = new Set<ComponentSpec>();
  for (const value of Object.values(mod)) {
    const s = value as Partial<ComponentSpec> | null;
    if (
      s !== null &&
      typeof s === 'object' &&
      typeof s.name === 'string' &&
      SPEC_KINDS.includes(s.kind as ComponentKind) &&
      typeof s.create === 'function' &&
      typeof s.config === 'object'
    ) {
      found.add(s as ComponentSpec);
    }
  }
  return [...found];
}
