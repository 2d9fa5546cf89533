/**
 * The structural check of a pipeline file: walks the parsed document, validates every top-level
 * key and every component against its spec, names the stages, and collects every problem with
 * its path (located to a line and column by `yaml.ts`) instead of stopping at the first.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import type { z } from 'zod';
import { errorMessage } from '../core/errors.ts';
import type { BufferOptions } from '../core/graph.ts';
import { type ConfigProblem, formatPath } from '../spec/problems.ts';
import type { ComponentKind, Segments } from '../spec/registry.ts';
import { didYouMean, listChoices } from '../spec/suggest.ts';
import { type ValueProblem, validateValue } from '../spec/validate.ts';
import {
  bufferSchema,
  connectionsSchema,
  moduleKeySchema,
  moduleParallelismSchema,
  moduleSchema,
  type Siblings,
  STAGE_NAME,
  scalarKeys,
  TOP_LEVEL,
} from './keys.ts';
import type { ComponentConfig, LoadOptions, ModuleStepConfig, PipelineConfig, StepConfig } from './load.ts';
import { locate, type SourceDocument } from './yaml.ts';

/** Most alias expansions a pipeline file may have: a few anchors are normal, an exponential fan-out is an attack. */
export const MAX_ALIAS_COUNT = 100;

/** Checks one parsed document; {@link Checker.check} returns the config or undefined. */
export class Checker {
  private readonly source: SourceDocument;
  private readonly options: LoadOptions;
  private readonly problems: ConfigProblem[];
  private readonly baseDir: string;
  /** Stage names given with `name:`, with where they were given. */
  private readonly explicitNames = new Map<string, string>();
  /** Paths of values taken from `${VAR}`, with the text written in the file. */
  private readonly substituted: ReadonlyMap<string, string>;
  /** `connections:` of the file, by name and connector. */
  private connections: Record<string, Record<string, Record<string, unknown>>> = {};

  /**
   * @param substituted config paths of values taken from environment variables, with the
   *   text the file has there (`${PG_URL}`): problems name that text, never the value
   */
  constructor(
    source: SourceDocument,
    options: LoadOptions,
    problems: ConfigProblem[],
    substituted: ReadonlyMap<string, string> = new Map(),
  ) {
    this.source = source;
    this.options = options;
    this.problems = problems;
    this.baseDir = options.baseDir ?? dirname(resolve(source.file));
    this.substituted = substituted;
  }

  /** How problems name the value at `path` when it came from `${VAR}`; else undefined. */
  private concealed(path: readonly PropertyKey[]): string | undefined {
    const text = this.substituted.get(formatPath(path));
    return text === undefined ? undefined : `the value of \`${text}\``;
  }

  /** {@link validateValue} of the value at `path`, naming values from `${VAR}` by their variable. */
  private validate(schema: z.ZodType, value: unknown, path: readonly PropertyKey[]) {
    return validateValue(schema, value, { conceal: (p) => this.concealed([...path, ...p]) });
  }

  /** The value at `path` for a message: its variable when it came from one. */
  private describe(value: unknown, path: readonly PropertyKey[]): string {
    return this.concealed(path) ?? describe(value);
  }

  check(): PipelineConfig | undefined {
    let root: unknown;
    try {
      root = this.source.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      // The yaml library refuses documents whose aliases expand too often (an "alias bomb").
      this.error(
        [],
        `the file expands YAML aliases (\`*name\`) more than ${MAX_ALIAS_COUNT} times (${(err as Error).message}); write the repeated values out, or use fewer aliases`,
      );
      return undefined;
    }
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
      const r = this.validate(schema, doc[key], [key]);
      if (r.ok) scalars[key] = r.value;
      else this.report([key], r.problems);
    }
    const name = (scalars.name as string | undefined) ?? defaultName(this.source.file);
    if (doc.connections !== undefined && doc.connections !== null) {
      const r = this.validate(connectionsSchema, doc.connections, ['connections']);
      if (r.ok) this.connections = r.value as typeof this.connections;
      else this.report(['connections'], r.problems);
    }

    // Explicit stage names first, so default names can avoid them.
    this.collectNames(doc);

    const inputs = this.inputs(doc);
    const input =
      inputs === undefined ? this.requiredComponent(doc, 'input', 'source', []) : [...inputs.values()][0];
    const steps: StepConfig[] = [];
    const pipeline = doc.pipeline;
    if (pipeline !== undefined && pipeline !== null) {
      if (!Array.isArray(pipeline))
        this.error(
          ['pipeline'],
          `\`pipeline\` is a list of steps (\`- filter: …\`), got ${this.describe(pipeline, ['pipeline'])}`,
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
          `\`outputs\` maps side-output names to sinks (\`late: { file: … }\`), got ${this.describe(doc.outputs, ['outputs'])}`,
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
      inputs: inputs ?? new Map([[input.stageName, input]]),
      namedInputs: inputs !== undefined,
      steps,
      output,
      outputs,
      dlq,
      checkpoint: scalars.checkpoint as PipelineConfig['checkpoint'],
      maxErrorRate: scalars.maxErrorRate as number | undefined,
      channelCapacity: scalars.channelCapacity as number | undefined,
      maxStateBytes: scalars.maxStateBytes as number | undefined,
      http: scalars.http as PipelineConfig['http'],
      warnings: this.problems.filter((p) => p.severity === 'warning'),
      source: this.source,
    };
  }

  /**
   * The sources of `inputs:` by name (the stage name), or undefined when the file has none (then
   * `input:` is required). Reports `input` beside `inputs`, an empty or malformed map, bad names.
   */
  private inputs(doc: Record<string, unknown>): Map<string, ComponentConfig> | undefined {
    if (doc.inputs === undefined || doc.inputs === null) return undefined;
    if (doc.input !== undefined && doc.input !== null)
      this.error(
        ['inputs'],
        'give `input` (one source) or `inputs` (named sources for a `join`), not both',
        'key',
      );
    const out = new Map<string, ComponentConfig>();
    if (!isMap(doc.inputs) || Object.keys(doc.inputs).length === 0) {
      this.error(
        ['inputs'],
        `\`inputs\` maps names to sources (\`orders: { kafka: … }\`) for a \`join\` step to name, got ${isMap(doc.inputs) ? 'an empty map' : this.describe(doc.inputs, ['inputs'])}`,
      );
      return out;
    }
    for (const [name, source] of Object.entries(doc.inputs)) {
      if (!STAGE_NAME.test(name) || name === 'dlq') {
        this.error(
          ['inputs', name],
          `\`${name}\` cannot name an input; use letters, digits and \`_.:#/-\` (and not \`dlq\`)`,
          'key',
        );
        continue;
      }
      const c = this.component(source, ['inputs', name], 'source', [], name);
      if (c) out.set(name, { ...c, stageName: name });
    }
    return out;
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
    // An `inputs:` entry is named by its key.
    if (isMap(doc.inputs)) {
      for (const k of Object.keys(doc.inputs)) {
        const before = this.explicitNames.get(k);
        if (before !== undefined)
          this.error(
            ['inputs', k],
            `two stages are named \`${k}\` (also at \`${before}\`); stage names must be unique`,
            'key',
          );
        else if (STAGE_NAME.test(k)) this.explicitNames.set(k, `inputs.${k}`);
      }
    }
    for (const [entry, path] of entries) {
      if (!isMap(entry) || entry.name === undefined) continue;
      const n = entry.name;
      const at = formatPath(path);
      if (typeof n !== 'string' || !STAGE_NAME.test(n)) {
        this.error(
          [...path, 'name'],
          `a stage name is a non-empty string of letters, digits and \`_.:#/-\`, got ${this.describe(n, [...path, 'name'])}`,
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
    const c = this.component(value, path, 'operator', ['name', 'buffer']);
    return c?.spec.segments === undefined ? c : this.nested(c, path);
  }

  /** A composite step with its nested steps checked as steps (each problem at its own path). */
  private nested(c: ComponentConfig, path: PropertyKey[]): ComponentConfig | undefined {
    let segments: Segments;
    try {
      segments = (c.spec.segments as (config: unknown) => Segments)(c.config);
    } catch (err) {
      this.error(
        [...path, c.component],
        `cannot tell the nested steps of \`${c.component}\`: ${errorMessage(err)}`,
      );
      return undefined;
    }
    const written = segments.layout === 'copies' ? [segments.steps] : segments.branches;
    const lists = written.map((l) =>
      l.steps.map((s, i) => this.step(s, [...path, c.component, ...l.path, i])),
    );
    if (lists.some((l) => l.some((s) => s === undefined))) return undefined;
    return { ...c, nested: { segments, lists: lists as StepConfig[][] } };
  }

  private moduleStep(value: Record<string, unknown>, path: PropertyKey[]): ModuleStepConfig | undefined {
    const pos = locate(this.source, path);
    let ok = true;
    for (const key of Object.keys(value)) {
      if (['module', 'name', 'buffer', 'parallelism', 'key'].includes(key)) continue;
      ok = false;
      this.error(
        [...path, key],
        `unknown key \`${key}\` beside \`module\`; a module step takes \`module\` and optionally \`name\`, \`buffer\`, \`parallelism\` and \`key\``,
        'key',
      );
    }
    const buffer = this.buffer(value, path);
    const parallel = this.moduleParallel(value, path);
    if (parallel === undefined) ok = false;
    const r = this.validate(moduleSchema, value.module, [...path, 'module']);
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
      ...parallel,
    };
  }

  /** `parallelism` and `key` beside `module`, validated; undefined after reporting a problem. */
  private moduleParallel(
    value: Record<string, unknown>,
    path: PropertyKey[],
  ): Pick<ModuleStepConfig, 'parallelism' | 'key'> | undefined {
    const out: { parallelism?: number | 'auto'; key?: string | readonly string[] } = {};
    let ok = true;
    for (const [name, schema] of [
      ['parallelism', moduleParallelismSchema],
      ['key', moduleKeySchema],
    ] as const) {
      if (value[name] === undefined) continue;
      const r = this.validate(schema, value[name], [...path, name]);
      if (!r.ok) {
        this.error(
          [...path, name],
          name === 'parallelism'
            ? `\`parallelism\` must be \`auto\` or a whole number from 1 to 256, got ${this.describe(value[name], [...path, name])}`
            : `\`key\` must be a field name or a list of field names, got ${this.describe(value[name], [...path, name])}`,
        );
        ok = false;
      } else (out as Record<string, unknown>)[name] = r.value;
    }
    if (ok && out.key !== undefined && out.parallelism === undefined) {
      this.error(
        [...path, 'key'],
        '`key` beside `module` chooses the worker thread of each record: add `parallelism: 2` (or `auto`), or remove `key`',
        'key',
      );
      ok = false;
    }
    return ok ? out : undefined;
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
        `expected ${article(kind)} as a one-key map \`{kind: config}\`, e.g. ${example}; got ${this.describe(value, path)}${hint}. Known ${kind}s: ${this.known(kind)}`,
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
    const raw = this.withConnection(value[name], [...path, name], name);
    if (raw === undefined) return undefined;
    const r = this.validate(spec.config as z.ZodType, raw.value, [...path, name]);
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

  /**
   * The component's config with the settings of its `connection:` (a name in `connections:`)
   * under it: the component's own fields win. `{ value }` as is without `connection`; undefined
   * (with a problem reported) when the connection or its `component` entry does not exist.
   */
  private withConnection(
    config: unknown,
    path: PropertyKey[],
    component: string,
  ): { value: unknown } | undefined {
    if (!isMap(config) || config.connection === undefined) return { value: config };
    const { connection, ...own } = config;
    const names = Object.keys(this.connections);
    if (typeof connection !== 'string' || this.connections[connection] === undefined) {
      const guess = typeof connection === 'string' ? didYouMean(connection, names) : undefined;
      this.error(
        [...path, 'connection'],
        `\`connection\` names an entry of the top-level \`connections:\`; ${this.describe(connection, [...path, 'connection'])} is none${guess ? `; did you mean \`${guess}\`?` : ''}. ${names.length > 0 ? `Known: ${listChoices(names, 'and')}` : 'The file has no `connections:`'}`,
      );
      return undefined;
    }
    const settings = this.connections[connection]?.[component];
    if (settings === undefined) {
      this.error(
        [...path, 'connection'],
        `the connection \`${connection}\` has no \`${component}\` settings; add \`connections.${connection}.${component}: { … }\``,
      );
      return undefined;
    }
    return { value: { ...settings, ...own } };
  }

  private buffer(value: Record<string, unknown>, path: PropertyKey[]): BufferOptions | undefined {
    if (value.buffer === undefined || value.buffer === null) return undefined;
    const r = this.validate(bufferSchema, value.buffer, [...path, 'buffer']);
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
