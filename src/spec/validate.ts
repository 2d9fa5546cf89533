/**
 * Validation of one value against a zod schema, turned into messages that say what is wrong
 * and what the valid choices are. Unlike a bare `safeParse`, fields a schema does not know are
 * reported even when the schema would silently strip them (`z.object`), with a "did you mean".
 */
import type { z } from 'zod';
import { didYouMean, listChoices } from './suggest.ts';

/** One problem inside a value, before it is located in a file. */
export interface ValueProblem {
  /** Path from the validated value to the problem. */
  readonly path: readonly PropertyKey[];
  readonly message: string;
  /** `key` when the problem is a field name (point at the key), else `value`. */
  readonly at: 'key' | 'value';
}

interface Def {
  readonly type: string;
  readonly innerType?: z.ZodType;
  readonly shape?: Record<string, z.ZodType>;
  readonly catchall?: z.ZodType;
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
  readonly getter?: () => z.ZodType;
  readonly entries?: Record<string, unknown>;
  readonly values?: readonly unknown[];
}

/** The internal definition of a zod 4 schema (its `type` and children). */
function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** The schema inside optional/default/nullable/pipe/lazy wrappers. */
function unwrap(schema: z.ZodType): z.ZodType {
  for (let i = 0; i < 20; i++) {
    const def = defOf(schema);
    if (
      def.innerType &&
      ['optional', 'default', 'prefault', 'nullable', 'catch', 'readonly', 'nonoptional'].includes(def.type)
    ) {
      schema = def.innerType;
    } else if (def.type === 'pipe' && def.in)
      schema = defOf(def.in).type === 'transform' && def.out ? def.out : def.in;
    else if (def.type === 'lazy' && def.getter) schema = def.getter();
    else break;
  }
  return schema;
}

/** The definition of `schema` unwrapped; for a union, of its object branch when it has one. */
function objectDef(schema: z.ZodType): Def {
  const def = defOf(unwrap(schema));
  if (def.type === 'union' && def.options) {
    const branch = def.options.find((o) => defOf(unwrap(o)).type === 'object');
    if (branch) return defOf(unwrap(branch));
  }
  return def;
}

/** The schema that validates the value at `path` inside a value validated by `schema`, if known. */
function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const seg of path) {
    if (s === undefined) return undefined;
    const def = objectDef(s);
    if (def.type === 'object') s = def.shape?.[String(seg)] ?? def.catchall;
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return undefined;
  }
  return s;
}

/** The `.describe()` text of a schema (looked up through wrappers). */
function descriptionOf(schema: z.ZodType): string | undefined {
  let s: z.ZodType | undefined = schema;
  for (let i = 0; i < 10 && s; i++) {
    if (s.description) return s.description;
    const def = defOf(s);
    s = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
  }
  return undefined;
}

/** A short description of a value for messages: `string "ten"`, `a list`, `null`. */
function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg as string];
  }
  return v;
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a map',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  bigint: 'a whole number',
  nonoptional: 'a value',
  unknown: 'a value',
};

function expectedName(expected: unknown): string {
  return TYPE_NAMES[String(expected)] ?? String(expected);
}

/** Options of {@link validateValue}. */
export interface ValidateOptions {
  /**
   * How to name the value at a path (from the validated value) without showing it, e.g.
   * ``the value of `${PG_URL}` `` for a value taken from an environment variable; undefined
   * to show the value as usual.
   */
  readonly conceal?: ((path: readonly PropertyKey[]) => string | undefined) | undefined;
}

/**
 * Validates `value` against `schema` and returns the parsed value or every problem found.
 * A `null` value (a YAML key with nothing after it) counts as an empty map when the schema
 * wants a map, so `stdio:` means `stdio: {}`. Messages quote the offending value, except
 * where `options.conceal` names it instead.
 */
export function validateValue(
  schema: z.ZodType,
  value: unknown,
  options: ValidateOptions = {},
): { ok: true; value: unknown } | { ok: false; problems: ValueProblem[] } {
  if (value === null && defOf(unwrap(schema)).type === 'object') value = {};
  const problems: ValueProblem[] = [];
  unknownFields(schema, value, [], problems);
  // `jitless`: a pipeline file is parsed once; zod would first compile a fast path per object
  // schema with `new Function` (~16 ms of a run's start-up), for nothing.
  const result = schema.safeParse(value, { jitless: true });
  if (!result.success) {
    const describeAt = (v: unknown, path: readonly PropertyKey[]) =>
      options.conceal?.(path) ?? describeValue(v);
    for (const issue of result.error.issues)
      problems.push(...issueProblems(schema, value, issue as Issue, [], describeAt));
  }
  if (problems.length > 0) return { ok: false, problems: dedupe(problems) };
  return { ok: true, value: (result as { data: unknown }).data };
}

function dedupe(problems: ValueProblem[]): ValueProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path.map(String).join('.')}|${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

interface Issue {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly expected?: unknown;
  readonly values?: readonly unknown[];
  readonly keys?: readonly string[];
  readonly errors?: readonly (readonly Issue[])[];
}

/** Fields of strip-mode objects (`z.object`) that the schema does not know. */
function unknownFields(schema: z.ZodType, value: unknown, path: PropertyKey[], out: ValueProblem[]): void {
  const def = defOf(unwrap(schema));
  if (def.type === 'object' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const shape = def.shape ?? {};
    for (const [k, v] of Object.entries(value)) {
      const field = shape[k];
      if (field) unknownFields(field, v, [...path, k], out);
      else if (def.catchall === undefined) out.push(unknownField(k, Object.keys(shape), [...path, k]));
    }
  } else if (def.type === 'array' && def.element && Array.isArray(value)) {
    for (const [i, v] of value.entries()) unknownFields(def.element as z.ZodType, v, [...path, i], out);
  } else if (def.type === 'record' && def.valueType && value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) unknownFields(def.valueType, v, [...path, k], out);
  } else if (def.type === 'union' && def.options) {
    // Only when exactly one branch is an object schema can its fields be judged.
    const objects = def.options.filter((o) => defOf(unwrap(o)).type === 'object');
    if (objects.length === 1 && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      unknownFields(objects[0] as z.ZodType, value, path, out);
    }
  }
}

function unknownField(key: string, known: readonly string[], path: PropertyKey[]): ValueProblem {
  const guess = didYouMean(key, known);
  const hint = guess ? `; did you mean \`${guess}\`?` : '.';
  const fields =
    known.length > 0 ? ` Known fields: ${listChoices([...known].sort(), 'and')}.` : ' It takes no fields.';
  return { path, at: 'key', message: `unknown field \`${key}\`${hint}${fields}` };
}

/** Names a value in a message: `string "ten"`, or how it is concealed. */
type Describe = (value: unknown, path: readonly PropertyKey[]) => string;

function issueProblems(
  schema: z.ZodType,
  root: unknown,
  issue: Issue,
  prefix: readonly PropertyKey[],
  describe: Describe,
): ValueProblem[] {
  const path = [...prefix, ...issue.path];
  const value = valueAt(root, path);
  switch (issue.code) {
    case 'invalid_type': {
      if (value === undefined) {
        const field = path.at(-1);
        const fieldSchema = schemaAt(schema, path);
        const doc = fieldSchema ? descriptionOf(fieldSchema) : undefined;
        if (field === undefined)
          return [{ path, at: 'value', message: `a value is required (${expectedName(issue.expected)})` }];
        return [
          {
            path,
            at: 'value',
            message: `missing required field \`${String(field)}\` (${[expectedName(issue.expected), doc].filter((x) => x && x !== 'a value').join(': ')})`,
          },
        ];
      }
      return [
        {
          path,
          at: 'value',
          message: `expected ${expectedName(issue.expected)}, got ${describe(value, path)}`,
        },
      ];
    }
    case 'invalid_value': {
      const choices = (issue.values ?? []).map((v) => String(v));
      if (value === undefined && path.length > 0) {
        const fieldSchema = schemaAt(schema, path);
        const doc = fieldSchema ? descriptionOf(fieldSchema) : undefined;
        const one = choices.length === 1 ? `\`${choices[0]}\`` : `one of ${listChoices(choices)}`;
        return [
          {
            path,
            at: 'value',
            message: `missing required field \`${String(path.at(-1))}\` (${one}${doc ? `: ${doc}` : ''})`,
          },
        ];
      }
      const guess = typeof value === 'string' ? didYouMean(value, choices) : undefined;
      const hint = guess ? `; did you mean \`${guess}\`?` : '';
      if (choices.length === 1)
        return [{ path, at: 'value', message: `expected \`${choices[0]}\`, got ${describe(value, path)}` }];
      return [
        {
          path,
          at: 'value',
          message: `${describe(value, path)} is not one of ${listChoices(choices)}${hint}`,
        },
      ];
    }
    case 'unrecognized_keys': {
      const objectSchema = schemaAt(schema, path);
      const known = objectSchema ? Object.keys(objectDef(objectSchema).shape ?? {}) : [];
      return (issue.keys ?? []).map((k) => unknownField(k, known, [...path, k]));
    }
    case 'invalid_union':
      return unionProblems(schema, root, issue, path, value, describe);
    case 'too_small':
    case 'too_big':
    case 'not_multiple_of':
    case 'invalid_format':
      return [{ path, at: 'value', message: `${lowerFirst(issue.message)} (got ${describe(value, path)})` }];
    default:
      return [{ path, at: 'value', message: lowerFirst(issue.message) }];
  }
}

/**
 * A failed union: when one branch got past the type check (the value has that branch's
 * shape), its problems are the useful ones; otherwise say which shapes are accepted.
 */
function unionProblems(
  schema: z.ZodType,
  root: unknown,
  issue: Issue,
  path: PropertyKey[],
  value: unknown,
  describe: Describe,
): ValueProblem[] {
  const branches = issue.errors ?? [];
  const typed = branches.filter((b) => !b.some((i) => i.path.length === 0 && i.code === 'invalid_type'));
  if (typed.length >= 1) {
    const best = [...typed].sort((a, b) => a.length - b.length)[0] as readonly Issue[];
    return best.flatMap((i) => issueProblems(schema, root, i, path, describe));
  }
  const expected = [
    ...new Set(
      branches.flatMap((b) =>
        b.filter((i) => i.code === 'invalid_type').map((i) => expectedName(i.expected)),
      ),
    ),
  ];
  return [
    {
      path,
      at: 'value',
      message: `expected ${expected.length > 0 ? expected.join(' or ') : 'a different value'}, got ${describe(value, path)}`,
    },
  ];
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0]?.toLowerCase() + s.slice(1) : s;
}
