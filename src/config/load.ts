import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { CheckpointConfig } from '../checkpoint/spec.ts';
import type { BufferOptions } from '../core/graph.ts';
import { type ConfigProblem, configError, redactProblems, sortProblems } from '../spec/problems.ts';
import type { ComponentKind, ComponentSpec, Registry, Segments } from '../spec/registry.ts';
import { Checker } from './check.ts';
import {
  applyOverrides,
  type Env,
  interpolateDocument,
  locateSetProblems,
  overrideOrigins,
  parseSource,
  type SourceDocument,
} from './yaml.ts';

/** What every stage entry of the file carries: its stage name, where it stands, its buffer. */
export interface StageEntryConfig {
  /** The unique stage name in the graph. */
  readonly stageName: string;
  /** Path of the entry in the document, e.g. `pipeline[2]`. */
  readonly path: string;
  readonly line?: number | undefined;
  readonly column?: number | undefined;
  /** Buffer of the edge into this stage, when the entry says `buffer:`. */
  readonly buffer?: BufferOptions | undefined;
}

/** A component of the file (input, step, sink), validated and ready to build. */
export interface ComponentConfig extends StageEntryConfig {
  readonly type: 'component';
  readonly kind: ComponentKind;
  /** The component name (`file`, `batch`…). */
  readonly component: string;
  readonly spec: ComponentSpec;
  /** The config after validation: defaults applied, as `spec.create` takes it. */
  readonly config: unknown;
  /** A composite step's nested steps (`shard`, `fanOut`), checked: one list per segment. */
  readonly nested?: NestedStepsConfig | undefined;
}

/** The nested steps of a composite step: its {@link Segments} and each list, checked. */
export interface NestedStepsConfig {
  readonly segments: Segments;
  /** `copies`: one list; `branches`: one list per branch, in branch order. */
  readonly lists: readonly (readonly StepConfig[])[];
}

/** A `module:` step: user code loaded from a file. */
export interface ModuleStepConfig extends StageEntryConfig {
  readonly type: 'module';
  /** The module as written in the file. */
  readonly module: string;
  /** Absolute path of the module. */
  readonly modulePath: string;
  /** The export to use (`default` unless the file says). */
  readonly exportName: string;
  /** `parallelism:` beside `module`: worker threads for a per-record function. */
  readonly parallelism?: number | 'auto' | undefined;
  /** `key:` beside `module`: the field(s) that keep a key's records on one worker. */
  readonly key?: string | readonly string[] | undefined;
}

/** One entry of `pipeline:`. */
export type StepConfig = ComponentConfig | ModuleStepConfig;

/** A validated pipeline file. */
export interface PipelineConfig {
  /** The file as given (used in messages). */
  readonly file: string;
  /** Folder relative paths resolve against. */
  readonly baseDir: string;
  readonly name: string;
  /** The first (with `input:`, the one) source. */
  readonly input: ComponentConfig;
  /**
   * Every source by stage name: the one of `input:`, or the entries of `inputs:` (named by their
   * key, fed to the first step, a `join`, which names them).
   */
  readonly inputs: ReadonlyMap<string, ComponentConfig>;
  /** True when the file says `inputs:` (named sources for a `join`) rather than `input:`. */
  readonly namedInputs: boolean;
  readonly steps: readonly StepConfig[];
  /** One sink, or several (fan-out: each gets every record). */
  readonly output: readonly ComponentConfig[];
  /** Named side outputs. */
  readonly outputs: ReadonlyMap<string, ComponentConfig>;
  readonly dlq?: ComponentConfig | undefined;
  /** Periodic checkpoints (`sluice run` restores the newest one on start). */
  readonly checkpoint?: CheckpointConfig | undefined;
  readonly maxErrorRate?: number | undefined;
  readonly channelCapacity?: number | undefined;
  readonly maxStateBytes?: number | undefined;
  /** `http: { address }`: where `sluice run` serves metrics and the dashboard. */
  readonly http?: { readonly address: string } | undefined;
  /** Problems that do not stop the file from running. */
  readonly warnings: readonly ConfigProblem[];
  /** The parsed document (for tools that want to point at more lines). */
  readonly source: SourceDocument;
}

/** Options of {@link loadPipelineFile} and {@link parsePipeline}. */
export interface LoadOptions {
  /** The components the file may use. */
  readonly registry: Registry;
  /** Variables for `${VAR}`; default `process.env`. */
  readonly env?: Env;
  /** `path=value` overrides applied before validation (`sluice run --set`). */
  readonly set?: readonly string[];
  /** Folder relative paths resolve against; default the file's folder. */
  readonly baseDir?: string;
}

/**
 * Reads, interpolates and validates a pipeline file. Throws a `SLUICE_CONFIG`
 * {@link SluiceError} listing every problem (each with file:line:column); warnings of a valid
 * file are in `warnings`.
 *
 * @example
 * const config = await loadPipelineFile('pipelines/etl.yaml', { registry: defaultRegistry });
 * const pipeline = await buildPipeline(config);
 */
export async function loadPipelineFile(file: string, options: LoadOptions): Promise<PipelineConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw configError(file, [
      { severity: 'error', file, path: '', message: `cannot read the pipeline file: ${why}` },
    ]);
  }
  const result = parsePipeline(text, file, {
    ...options,
    baseDir: options.baseDir ?? dirname(resolve(file)),
  });
  if (result.config === undefined) throw configError(file, result.problems);
  return result.config;
}

/**
 * Validates pipeline YAML `text` (named `file` in messages). Never throws for a bad file:
 * returns every problem, and the config when there is no error.
 */
export function parsePipeline(
  text: string,
  file: string,
  options: LoadOptions,
): { config?: PipelineConfig | undefined; problems: ConfigProblem[] } {
  const { source, problems } = parseSource(text, file);
  if (problems.some((p) => p.severity === 'error')) return { problems };
  const origins = overrideOrigins(source, options.set ?? []);
  problems.push(...applyOverrides(source, options.set ?? []));
  const substituted = new Map<string, string>();
  const envProblems = interpolateDocument(source, options.env ?? process.env, substituted);
  problems.push(...envProblems);
  const checker = new Checker(source, options, problems, substituted);
  const config = checker.check();
  // A value whose variable is unset is also invalid for its field; say only the first.
  const envPaths = new Set(envProblems.map((p) => p.path));
  // Messages that quote a value from `${VAR}` anyway (a refinement's own wording) lose it here.
  const sorted = locateSetProblems(
    redactProblems(sortProblems(problems.filter((p) => !envPaths.has(p.path) || envProblems.includes(p)))),
    origins,
  );
  if (config === undefined || sorted.some((p) => p.severity === 'error')) return { problems: sorted };
  return { config: { ...config, warnings: redactProblems(config.warnings) }, problems: sorted };
}
