/**
 * Loading and validating pipeline files: YAML text → a validated {@link PipelineConfig}, with
 * every problem of the document reported at once, each with its line, column and path.
 *
 * The top-level keys are those of DESIGN.md "Pipeline files": `name`, `input`, `pipeline`,
 * `output` (one sink or a list: fan-out), `outputs` (named side outputs), `dlq`,
 * `checkpoint`, `maxErrorRate` and `channelCapacity`. Each component is a one-key object
 * `{kind: config}`; beside the kind, `name:` names the stage and (on steps and sinks)
 * `buffer: {size, overflow}` sizes the edge into it. A step may instead be
 * `module: ./file.ts` (or `{path, export}`): user code, see `build.ts`.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { z } from 'zod';
import { type CheckpointConfig, checkpointSchema } from '../checkpoint/spec.ts';
import type { BufferOptions } from '../core/graph.ts';
import { type ConfigProblem, configError, formatPath, sortProblems } from '../spec/problems.ts';
import type { ComponentKind, ComponentSpec, Registry } from '../spec/registry.ts';
import { didYouMean, listChoices } from '../spec/suggest.ts';
import { type ValueProblem, validateValue } from '../spec/validate.ts';
import {
  applyOverrides,
  type Env,
  interpolateDocument,
  locate,
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
  readonly input: ComponentConfig;
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

const TOP_LEVEL = [
  'name',
  'input',
  'pipeline',
  'output',
  'outputs',
  'dlq',
  'checkpoint',
  'maxErrorRate',
  'channelCapacity',
] as const;

const STAGE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:#/-]*$/;

/** Schemas of the top-level keys that are not components. */
const scalarKeys = {
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
      'Use letters, digits, `_`, `.` and `-`, starting with a letter or digit',
    )
    .describe(
      'Names the run in metrics and logs (later: checkpoints and consumer groups). Default: the file name.',
    ),
  checkpoint: checkpointSchema,
  maxErrorRate: z
    .number()
    .min(0)
    .max(1)
    .describe('Largest fraction (0–1) of records read that may become dead letters before the run fails.'),
  channelCapacity: z
    .number()
    .int()
    .min(1)
    .describe('Messages each channel between two stages queues (default 2).'),
} as const;

/** Schema of `buffer:` beside a sink or step. */
const bufferSchema = z
  .strictObject({
    size: z.number().int().min(1).optional().describe('Batches the edge queues; default `channelCapacity`.'),
    overflow: z
      .enum(['block', 'dropOldest', 'error'])
      .optional()
      .describe('When full: `block` (backpressure, default), `dropOldest`, or `error`.'),
  })
  .describe('Buffer of the edge into this stage.');

/** The top-level schemas of the non-component keys, for the JSON Schema and the docs. */
export const pipelineKeySchemas = { ...scalarKeys, buffer: bufferSchema };

const moduleSchema = z.union([
  z.string().min(1),
  z.strictObject({
    path: z.string().min(1).describe('Path of the module, relative to the pipeline file.'),
    export: z.string().min(1).default('default').describe('Name of the export to use.'),
  }),
]);

/** Which extra keys may sit beside the component key, per position. */
type Siblings = readonly ('name' | 'buffer')[];

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
  problems.push(...applyOverrides(source, options.set ?? []));
  const envProblems = interpolateDocument(source, options.env ?? process.env);
  problems.push(...envProblems);
  const checker = new Checker(source, options, problems);
  const config = checker.check();
  // A value whose variable is unset is also invalid for its field; say only the first.
  const envPaths = new Set(envProblems.map((p) => p.path));
  const sorted = sortProblems(problems.filter((p) => !envPaths.has(p.path) || envProblems.includes(p)));
  return { config: sorted.some((p) => p.severity === 'error') ? undefined : config, problems: sorted };
}

class Checker {
  private readonly source: SourceDocument;
  private readonly options: LoadOptions;
  private readonly problems: ConfigProblem[];
  private readonly baseDir: string;
  /** Stage names given with `name:`, with where they were given. */
  private readonly explicitNames = new Map<string, string>();

  constructor(source: SourceDocument, options: LoadOptions, problems: ConfigProblem[]) {
    this.source = source;
    this.options = options;
    this.problems = problems;
    this.baseDir = options.baseDir ?? dirname(resolve(source.file));
  }

  check(): PipelineConfig | undefined {
    const root: unknown = this.source.doc.toJS({ maxAliasCount: 100 });
    if (root === null || root === undefined) {
      this.error([], 'the pipeline file is empty; it needs at least `input:` and `output:`');
      return undefined;
    }
    if (typeof root !== 'object' || Array.isArray(root)) {
      this.error(
        [],
        `a pipeline file is a map of top-level keys (${listChoices(TOP_LEVEL, 'and')}), got ${Array.isArray(root) ? 'a list' : typeof root}`,
      );
      return undefined;
    }
    const doc = root as Record<string, unknown>;
    for (const key of Object.keys(doc)) {
      if ((TOP_LEVEL as readonly string[]).includes(key)) continue;
      const guess = didYouMean(key, TOP_LEVEL);
      this.error(
        [key],
        `unknown top-level key \`${key}\`${guess ? `; did you mean \`${guess}\`?` : ''} Valid keys: ${listChoices(TOP_LEVEL, 'and')}.`,
        'key',
      );
    }
    const scalars: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(scalarKeys)) {
      if (doc[key] === undefined) continue;
      const r = validateValue(schema, doc[key]);
      if (r.ok) scalars[key] = r.value;
      else this.report([key], r.problems);
    }
    const name = (scalars.name as string | undefined) ?? defaultName(this.source.file);

    // Explicit stage names first, so default names can avoid them.
    this.collectNames(doc);

    const input = this.requiredComponent(doc, 'input', 'source', []);
    const steps: StepConfig[] = [];
    const pipeline = doc.pipeline;
    if (pipeline !== undefined && pipeline !== null) {
      if (!Array.isArray(pipeline))
        this.error(
          ['pipeline'],
          `\`pipeline\` is a list of steps (\`- filter: …\`), got ${describe(pipeline)}`,
        );
      else
        pipeline.forEach((step, i) => {
          const s = this.step(step, ['pipeline', i]);
          if (s) steps.push(s);
        });
    }
    const output: ComponentConfig[] = [];
    if (doc.output === undefined || doc.output === null) {
      this.error(
        ['output'],
        `missing \`output\`: the sink records go to, e.g. \`output: { file: { path: out.jsonl, format: jsonl } }\``,
      );
    } else if (Array.isArray(doc.output)) {
      if (doc.output.length === 0)
        this.error(['output'], 'the `output` list is empty; give at least one sink');
      doc.output.forEach((o, i) => {
        const c = this.component(o, ['output', i], 'sink', ['name', 'buffer'], `output[${i}]`);
        if (c) output.push(c);
      });
    } else {
      const c = this.component(doc.output, ['output'], 'sink', ['name', 'buffer'], 'output');
      if (c) output.push(c);
    }
    const outputs = new Map<string, ComponentConfig>();
    if (doc.outputs !== undefined && doc.outputs !== null) {
      if (typeof doc.outputs !== 'object' || Array.isArray(doc.outputs)) {
        this.error(
          ['outputs'],
          `\`outputs\` maps side-output names to sinks (\`late: { file: … }\`), got ${describe(doc.outputs)}`,
        );
      } else {
        for (const [port, sink] of Object.entries(doc.outputs)) {
          if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(port) || port === 'out' || port === 'dlq') {
            this.error(
              ['outputs', port],
              `\`${port}\` cannot name a side output; use letters, digits, \`_\` and \`-\` (and not \`out\` or \`dlq\`)`,
              'key',
            );
            continue;
          }
          const c = this.component(sink, ['outputs', port], 'sink', ['name', 'buffer'], `outputs.${port}`);
          if (c) outputs.set(port, c);
        }
      }
    }
    const dlq =
      doc.dlq === undefined || doc.dlq === null
        ? undefined
        : this.component(doc.dlq, ['dlq'], 'sink', ['name'], 'dlq');
    if (!input) return undefined;
    return {
      file: this.source.file,
      baseDir: this.baseDir,
      name,
      input,
      steps,
      output,
      outputs,
      dlq,
      checkpoint: scalars.checkpoint as PipelineConfig['checkpoint'],
      maxErrorRate: scalars.maxErrorRate as number | undefined,
      channelCapacity: scalars.channelCapacity as number | undefined,
      warnings: this.problems.filter((p) => p.severity === 'warning'),
      source: this.source,
    };
  }

  private requiredComponent(
    doc: Record<string, unknown>,
    key: string,
    kind: ComponentKind,
    siblings: Siblings,
  ) {
    if (doc[key] === undefined || doc[key] === null) {
      this.error(
        [key],
        `missing \`${key}\`: the ${kind} records come from, e.g. \`${key}: { file: { path: in.jsonl, format: jsonl } }\`. Known ${kind}s: ${this.known(kind)}`,
      );
      return undefined;
    }
    return this.component(doc[key], [key], kind, ['name', ...siblings], key);
  }

  /** Records `name:` values given anywhere, reporting duplicates and invalid names. */
  private collectNames(doc: Record<string, unknown>): void {
    const entries: [unknown, PropertyKey[]][] = [
      [doc.input, ['input']],
      [doc.dlq, ['dlq']],
    ];
    if (Array.isArray(doc.pipeline)) {
      for (const [i, s] of doc.pipeline.entries()) entries.push([s, ['pipeline', i]]);
    }
    if (Array.isArray(doc.output)) {
      for (const [i, s] of doc.output.entries()) entries.push([s, ['output', i]]);
    } else entries.push([doc.output, ['output']]);
    if (doc.outputs && typeof doc.outputs === 'object') {
      for (const [k, v] of Object.entries(doc.outputs)) entries.push([v, ['outputs', k]]);
    }
    for (const [entry, path] of entries) {
      if (!isMap(entry) || entry.name === undefined) continue;
      const n = entry.name;
      const at = formatPath(path);
      if (typeof n !== 'string' || !STAGE_NAME.test(n)) {
        this.error(
          [...path, 'name'],
          `a stage name is a non-empty string of letters, digits and \`_.:#/-\`, got ${describe(n)}`,
        );
        continue;
      }
      const before = this.explicitNames.get(n);
      if (before !== undefined)
        this.error(
          [...path, 'name'],
          `two stages are named \`${n}\` (also at \`${before}\`); stage names must be unique`,
        );
      else this.explicitNames.set(n, at);
    }
  }

  private step(value: unknown, path: PropertyKey[]): StepConfig | undefined {
    if (isMap(value) && 'module' in value) return this.moduleStep(value, path);
    return this.component(value, path, 'operator', ['name', 'buffer']);
  }

  private moduleStep(value: Record<string, unknown>, path: PropertyKey[]): ModuleStepConfig | undefined {
    const pos = locate(this.source, path);
    let ok = true;
    for (const key of Object.keys(value)) {
      if (key === 'module' || key === 'name' || key === 'buffer') continue;
      ok = false;
      this.error(
        [...path, key],
        `unknown key \`${key}\` beside \`module\`; a module step takes \`module\` and optionally \`name\` and \`buffer\``,
        'key',
      );
    }
    const buffer = this.buffer(value, path);
    const r = validateValue(moduleSchema, value.module);
    if (!r.ok) {
      this.report([...path, 'module'], r.problems);
      return undefined;
    }
    const m =
      typeof r.value === 'string'
        ? { path: r.value, export: 'default' }
        : (r.value as { path: string; export: string });
    if (!/^(\.{1,2}[/\\]|\/|[A-Za-z]:[/\\])/.test(m.path)) {
      this.error(
        [...path, 'module'],
        `\`${m.path}\` is not a file path; write it relative to the pipeline file, e.g. \`./${m.path}\``,
      );
      return undefined;
    }
    const modulePath = resolve(this.baseDir, m.path);
    if (!existsSync(modulePath)) {
      this.error([...path, 'module'], `module \`${m.path}\` not found (looked for ${modulePath})`);
      return undefined;
    }
    if (!ok) return undefined;
    const stem = basename(m.path, extname(m.path));
    return {
      type: 'module',
      module: m.path,
      modulePath,
      exportName: m.export,
      stageName: this.stageName(value, stem),
      path: formatPath(path),
      line: pos.line,
      column: pos.column,
      buffer,
    };
  }

  private component(
    value: unknown,
    path: PropertyKey[],
    kind: ComponentKind,
    siblings: Siblings,
    roleName?: string,
  ): ComponentConfig | undefined {
    const where = formatPath(path);
    if (!isMap(value)) {
      const example =
        kind === 'operator' ? '`- batch: { size: 100 }`' : '`{ file: { path: out.jsonl, format: jsonl } }`';
      const hint =
        typeof value === 'string' && this.options.registry.get(kind, value)
          ? ` (write \`${value}: {}\`)`
          : '';
      this.error(
        path,
        `expected ${article(kind)} as a one-key map \`{kind: config}\`, e.g. ${example}; got ${describe(value)}${hint}. Known ${kind}s: ${this.known(kind)}`,
      );
      return undefined;
    }
    const allowed = new Set<string>(siblings);
    const candidates = Object.keys(value).filter((k) => !allowed.has(k));
    let componentKey: string | undefined;
    if (candidates.length === 0) {
      this.error(
        path,
        `no ${kind} in \`${where}\`; give one as \`{kind: config}\`. Known ${kind}s: ${this.known(kind)}`,
      );
      return undefined;
    }
    if (candidates.length === 1) componentKey = candidates[0];
    else {
      const known = candidates.filter((k) => this.options.registry.get(kind, k));
      if (known.length === 1) {
        componentKey = known[0];
        for (const k of candidates) {
          if (k === componentKey) continue;
          const guess = didYouMean(k, siblings);
          const allowedText =
            siblings.length > 0 ? ` Beside it only ${listChoices(siblings)} may appear.` : '';
          this.error(
            [...path, k],
            `unknown key \`${k}\` beside ${kind} \`${componentKey}\`${guess ? `; did you mean \`${guess}\`?` : '.'}${allowedText}`,
            'key',
          );
        }
      } else {
        this.error(
          path,
          `one entry holds exactly one ${kind}, found ${listChoices(candidates, 'and')}${kind === 'operator' ? '; put each step in its own list item (`- …`)' : ''}`,
        );
        return undefined;
      }
    }
    const name = componentKey as string;
    const buffer = allowed.has('buffer') ? this.buffer(value, path) : undefined;
    const spec = this.options.registry.get(kind, name);
    if (!spec) {
      this.unknownComponent(name, kind, [...path, name]);
      return undefined;
    }
    const r = validateValue(spec.config as z.ZodType, value[name]);
    if (!r.ok) {
      this.report([...path, name], r.problems);
      return undefined;
    }
    const pos = locate(this.source, path);
    return {
      type: 'component',
      kind,
      component: name,
      spec,
      config: r.value,
      stageName: this.stageName(value, roleName ?? name),
      path: where,
      line: pos.line,
      column: pos.column,
      buffer,
    };
  }

  private buffer(value: Record<string, unknown>, path: PropertyKey[]): BufferOptions | undefined {
    if (value.buffer === undefined || value.buffer === null) return undefined;
    const r = validateValue(bufferSchema, value.buffer);
    if (!r.ok) {
      this.report([...path, 'buffer'], r.problems);
      return undefined;
    }
    return r.value as BufferOptions;
  }

  private unknownComponent(name: string, kind: ComponentKind, path: PropertyKey[]): void {
    const registry = this.options.registry;
    const names = registry.list(kind).map((s) => s.name);
    const otherKinds = (['source', 'sink', 'operator'] as const).filter(
      (k) => k !== kind && registry.get(k, name),
    );
    if (otherKinds.length > 0) {
      this.error(
        path,
        `\`${name}\` is a ${otherKinds.join(' and a ')}, not ${article(kind)}, so it cannot be used here. Known ${kind}s: ${this.known(kind)}`,
        'key',
      );
      return;
    }
    const guess = didYouMean(name, names);
    const extra = kind === 'operator' ? ' (or `module: ./file.ts` for your own code)' : '';
    this.error(
      path,
      `unknown ${kind} \`${name}\`${guess ? `; did you mean \`${guess}\`?` : '.'} Known ${kind}s: ${this.known(kind)}${extra}`,
      'key',
    );
  }

  private known(kind: ComponentKind): string {
    const names = this.options.registry.list(kind).map((s) => s.name);
    return names.length > 0 ? listChoices(names, 'and') : '(none registered)';
  }

  /** The entry's `name:`, or a default derived from `base` that no other stage uses. */
  private stageName(value: Record<string, unknown>, base: string): string {
    if (typeof value.name === 'string' && STAGE_NAME.test(value.name)) return value.name;
    const taken = this.explicitNames;
    let name = base;
    let n = 2;
    while (taken.has(name)) name = `${base}#${n++}`;
    taken.set(name, '(default)');
    return name;
  }

  private report(prefix: PropertyKey[], problems: readonly ValueProblem[]): void {
    for (const p of problems) this.error([...prefix, ...p.path], p.message, p.at);
  }

  private error(path: PropertyKey[], message: string, at: 'key' | 'value' = 'value'): void {
    this.problems.push({
      severity: 'error',
      file: this.source.file,
      ...locate(this.source, path, at),
      path: formatPath(path),
      message,
    });
  }
}

function article(kind: ComponentKind): string {
  return kind === 'operator' ? 'an operator' : `a ${kind}`;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** The default pipeline name: the file name without its extension. */
function defaultName(file: string): string {
  const stem = basename(file, extname(file));
  const clean = stem.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return clean === '' ? 'pipeline' : clean;
}
