/**
 * The component reference (`docs/components.md`, `sluice list NAME`) generated from the
 * registry, so the docs never drift from what the specs validate.
 */
import type { z } from 'zod';
import type { ComponentKind, ComponentSpec, Registry } from '../spec/registry.ts';
import { configJsonSchema, pipelineJsonSchema } from './schema.ts';

type JsonSchema = Record<string, unknown>;

/** One row of a component's fields table. */
export interface FieldDoc {
  /** Dotted path of the field inside the component's config (`watermark.maxOutOfOrder`). */
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  /** The default as YAML-ish text, when there is one. */
  readonly default?: string | undefined;
  readonly description: string;
}

/**
 * The fields of a component's config, nested objects flattened with dotted names. A config
 * that is not an object (e.g. a CEL expression string) yields one row named `(value)`.
 */
export function fieldDocs(spec: ComponentSpec): FieldDoc[] {
  const schema = configJsonSchema(spec.config as z.ZodType);
  const rows: FieldDoc[] = [];
  if (schema.type === 'object' && schema.properties) walk(schema, '', rows);
  else
    rows.push({
      name: '(value)',
      type: typeOf(schema),
      required: true,
      description: text(schema.description),
    });
  return rows;
}

function walk(schema: JsonSchema, prefix: string, rows: FieldDoc[]): void {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  for (const [key, field] of Object.entries(props)) {
    const name = prefix + key;
    rows.push({
      name,
      type: typeOf(field),
      required: required.has(key),
      default: field.default === undefined ? undefined : JSON.stringify(field.default),
      description: text(field.description),
    });
    if (field.type === 'object' && field.properties) walk(field, `${name}.`, rows);
  }
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** A short type name for a JSON Schema: `string`, `integer ≥ 1`, `"a" | "b"`, `list of string`. */
function typeOf(s: JsonSchema): string {
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(s[key])) {
      return [...new Set((s[key] as JsonSchema[]).filter((x) => x.type !== 'null').map(typeOf))].join(' | ');
    }
  }
  const t = s.type;
  if (t === 'array') return `list of ${s.items ? typeOf(s.items as JsonSchema) : 'any'}`;
  if (
    t === 'object' &&
    s.additionalProperties &&
    typeof s.additionalProperties === 'object' &&
    !s.properties
  ) {
    return `map of ${typeOf(s.additionalProperties as JsonSchema)}`;
  }
  if (t === 'integer' || t === 'number') {
    const bounds: string[] = [];
    // zod's `int()` alone gives the safe-integer bounds: no bound a reader needs to see.
    if (typeof s.minimum === 'number' && s.minimum > Number.MIN_SAFE_INTEGER) bounds.push(`≥ ${s.minimum}`);
    if (typeof s.exclusiveMinimum === 'number') bounds.push(`> ${s.exclusiveMinimum}`);
    if (typeof s.maximum === 'number' && s.maximum < Number.MAX_SAFE_INTEGER) bounds.push(`≤ ${s.maximum}`);
    if (typeof s.exclusiveMaximum === 'number') bounds.push(`< ${s.exclusiveMaximum}`);
    return [t, ...bounds].join(' ');
  }
  if (Array.isArray(t)) return t.join(' | ');
  return typeof t === 'string' ? t : 'any';
}

const KIND_TITLES: Record<ComponentKind, string> = {
  source: 'Sources',
  operator: 'Operators',
  sink: 'Sinks',
};
const KIND_KEYS: Record<ComponentKind, string> = { source: 'input', operator: 'pipeline', sink: 'output' };

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n+/g, ' ');
}

/** The Markdown reference section of one component. */
function componentMarkdown(spec: ComponentSpec): string {
  const out: string[] = [];
  out.push(`### ${spec.name} (${spec.kind})`, '');
  out.push(`${spec.stability} · used under \`${KIND_KEYS[spec.kind]}:\``, '');
  out.push(spec.summary, '');
  if (spec.description) out.push(spec.description.trim(), '');
  const fields = fieldDocs(spec);
  if (fields.length > 0) {
    out.push('| field | type | default | description |', '|---|---|---|---|');
    for (const f of fields) {
      const def = f.default ?? (f.required ? '**required**' : '');
      out.push(`| \`${f.name}\` | ${cell(f.type)} | ${cell(def)} | ${cell(f.description)} |`);
    }
    out.push('');
  } else out.push('No fields.', '');
  for (const ex of spec.examples ?? []) {
    out.push(`**${ex.title}**`, '', '```yaml', `${spec.name}:`, ...indent(ex.yaml), '```', '');
  }
  return out.join('\n');
}

function indent(yaml: string): string[] {
  return yaml
    .trimEnd()
    .split('\n')
    .map((l) => (l === '' ? '' : `  ${l}`));
}

/**
 * The whole reference: every component of `registry` grouped by kind, plus `module:` steps.
 * Deterministic, so a test can compare it with the checked-in `docs/components.md`.
 */
export function componentsMarkdown(registry: Registry): string {
  const out: string[] = [
    '# Components',
    '',
    '<!-- Generated from the component specs by `node scripts/gen-docs.ts`; do not edit by hand. -->',
    '',
    'Each component is written as a one-key map `{kind: config}`. Beside the kind, `name:` names the',
    'stage; on steps and sinks, `buffer: { size, overflow }` sets the buffer of the edge into it.',
    '',
  ];
  out.push(...pipelineKeysMarkdown(registry));
  for (const kind of ['source', 'operator', 'sink'] as const) {
    const specs = registry.list(kind);
    out.push(`## ${KIND_TITLES[kind]}`, '');
    if (specs.length === 0) out.push('None registered yet.', '');
    else {
      out.push('| name | stability | summary |', '|---|---|---|');
      for (const s of specs)
        out.push(`| [\`${s.name}\`](#${anchor(s)}) | ${s.stability} | ${cell(s.summary)} |`);
      out.push('');
      for (const s of specs) out.push(componentMarkdown(s));
    }
    if (kind === 'operator') out.push(MODULE_DOC);
  }
  return `${out.join('\n').trimEnd()}\n`;
}

/** What a `$ref` of the pipeline schema stands for, in the keys table. */
const REF_NOUNS: Record<string, string> = {
  '#/$defs/source': 'source',
  '#/$defs/sink': 'sink',
  '#/$defs/dlqSink': 'sink',
  '#/$defs/step': 'step',
};

/** `a sink`, `list of steps`, `map of name → sink`, `a sink or list of sinks`; undefined for no `$ref`. */
function refType(s: JsonSchema): string | undefined {
  const noun = (x: unknown) =>
    x !== null && typeof x === 'object' && typeof (x as JsonSchema).$ref === 'string'
      ? (REF_NOUNS[(x as JsonSchema).$ref as string] ?? 'component')
      : undefined;
  if (noun(s) !== undefined) return `a ${noun(s)}`;
  if (s.type === 'array' && noun(s.items) !== undefined) return `list of ${noun(s.items)}s`;
  if (s.type === 'object' && noun(s.additionalProperties) !== undefined)
    return `map of name → ${noun(s.additionalProperties)}`;
  if (Array.isArray(s.anyOf)) {
    const parts = (s.anyOf as JsonSchema[]).map(refType);
    if (parts.every((p) => p !== undefined)) return parts.join(' or ');
  }
  return undefined;
}

/**
 * The top-level keys of a pipeline file, from the same JSON Schema `sluice schema` prints: what
 * each key holds, and the fields of the object-valued ones (`checkpoint.interval` …).
 */
function pipelineKeysMarkdown(registry: Registry): string[] {
  const schema = pipelineJsonSchema(registry);
  const defs = (schema.$defs ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  const rows: FieldDoc[] = [];
  for (const [key, prop] of Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>)) {
    const ref = typeof prop.$ref === 'string' ? defs[prop.$ref.replace('#/$defs/', '')] : undefined;
    rows.push({
      name: key,
      type: refType(prop) ?? typeOf(prop),
      required: required.has(key),
      default: prop.default === undefined ? undefined : JSON.stringify(prop.default),
      description: text(prop.description ?? ref?.description),
    });
    if (prop.type === 'object' && prop.properties) walk(prop, `${key}.`, rows);
  }
  const out = [
    '## The pipeline file',
    '',
    'The top-level keys of a pipeline file (the same rules `sluice lint` applies and `sluice schema` prints as JSON',
    'Schema). A relative path in the file resolves against the file’s folder.',
    '',
    '| key | type | default | description |',
    '|---|---|---|---|',
  ];
  for (const f of rows) {
    const def = f.default ?? (f.required ? '**required**' : '');
    out.push(`| \`${f.name}\` | ${cell(f.type)} | ${cell(def)} | ${cell(f.description)} |`);
  }
  out.push('');
  return out;
}

// The slug GitHub gives the heading `name (kind)`; the kind keeps a source and a sink of the
// same name apart.
function anchor(spec: ComponentSpec): string {
  return `${spec.name.toLowerCase().replace(/[^a-z0-9_-]/g, '')}-${spec.kind}`;
}

/**
 * What a `module:` step is (it has no spec: its config is the module's path), for
 * `docs/components.md` and `sluice list module`.
 */
export const MODULE_STEP_DOC = `Runs your own code. \`module: ./enrich.ts\` (or \`module: { path: ./enrich.ts, export: enrich }\`), relative
to the pipeline file. The export is either a function \`(record) => record | record[] | undefined | null\`
(one record keeps it, a list replaces it with several, \`undefined\`/\`null\` drops it; a thrown error sends
the record to the \`dlq\`; it may be async), or an operator object with \`process(batch, out)\`.

\`\`\`yaml
pipeline:
  - module: ./enrich.ts
\`\`\`

A CPU-heavy function can run on worker threads: \`parallelism: 2\` (or \`auto\`, the available cores)
beside \`module\`, and optionally \`key: userId\` (a field or a list of fields) so that every record of a
key runs on one worker, in order. The output is in input order and the dead letters are those of one
thread; each worker imports the module itself, and so does the calling thread, which runs the
first batches of a step without \`key\` while the workers start (module-level state is per thread
and not checkpointed). Only a function can move to a worker: an operator object (or, in TypeScript, a closure)
is refused. Records cross threads as data (structured clone): \`Decimal\` amounts, dates, maps, sets
and bigints arrive as they were sent; instances of your own classes arrive as plain objects.

\`\`\`yaml
pipeline:
  - module: ./score.ts
    parallelism: 2
    key: userId
\`\`\`
`;

const MODULE_DOC = `### module (step)

stable · used under \`pipeline:\`

${MODULE_STEP_DOC}`;
