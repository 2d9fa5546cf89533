/**
 * JSON Schema validation for `format: json-schema`: a record is checked against the writer's
 * schema when it is decoded and against the sink's schema before it is encoded, and a record that
 * fails says where (the JSON pointer of the failing value) and which keyword failed.
 *
 * Library: `ajv` 8 (the validator most JSON Schema tooling in JavaScript is built on, draft-07,
 * 2019-09 and 2020-12; it compiles a schema to a function once, ~1 µs per small record after).
 * Validators are compiled once per schema text (and so per schema id) and kept; `format`
 * keywords (`date-time`, `email`…) are not checked, since that needs the separate `ajv-formats`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';

/** Why a value fails its schema: where, which keyword, and ajv's words. */
export interface JsonSchemaViolation {
  /** JSON pointer (RFC 6901) of the failing value; `''` is the record itself. */
  readonly pointer: string;
  /** The schema keyword that failed (`type`, `required`, `minimum`…). */
  readonly keyword: string;
  /** What is wrong, e.g. `must be number`, `must have required property 'id'`. */
  readonly message: string;
}

/** Checks a value; undefined when it is valid. */
export type JsonSchemaCheck = (value: unknown) => JsonSchemaViolation | undefined;

/** Compiled validators by schema text: a process sees few schemas, each compiled once. */
const compiled = new Map<string, JsonSchemaCheck>();
const MAX_COMPILED = 1024;

function ajvFor(schema: { $schema?: unknown }): Ajv {
  const dialect = typeof schema.$schema === 'string' ? schema.$schema : '';
  const options = { strict: false, allErrors: false, validateFormats: false };
  if (dialect.includes('2020-12')) return new Ajv2020(options);
  if (dialect.includes('2019-09')) return new Ajv2019(options);
  if (dialect.includes('draft-04') || dialect.includes('draft-03'))
    throw new Error(`JSON Schema ${dialect} is not supported; use draft-06 or later`);
  return new Ajv(options);
}

function violation(e: ErrorObject): JsonSchemaViolation {
  return { pointer: e.instancePath, keyword: e.keyword, message: e.message ?? `fails \`${e.keyword}\`` };
}

/**
 * The check of a JSON Schema (text). Throws an Error saying why the schema cannot be compiled.
 *
 * @example
 * const check = jsonSchemaCheck('{"type":"object","required":["id"]}');
 * check({}); // { pointer: '', keyword: 'required', message: "must have required property 'id'" }
 */
export function jsonSchemaCheck(schemaText: string): JsonSchemaCheck {
  const known = compiled.get(schemaText);
  if (known !== undefined) return known;
  const schema = JSON.parse(schemaText) as object;
  let validate: ValidateFunction;
  try {
    // A fresh instance per schema: two schemas may declare the same `$id`.
    validate = ajvFor(schema).compile(schema);
  } catch (err) {
    throw new Error(`the JSON Schema does not compile: ${(err as Error).message}`);
  }
  const check: JsonSchemaCheck = (value) => {
    if (validate(value)) return undefined;
    const first = validate.errors?.[0];
    return first === undefined
      ? { pointer: '', keyword: 'false', message: 'is not valid' }
      : violation(first);
  };
  if (compiled.size >= MAX_COMPILED) compiled.clear();
  compiled.set(schemaText, check);
  return check;
}

/** `at \`/items/0/price\`: must be number (keyword \`type\`)` — a violation as a clause of a message. */
export function describeViolation(v: JsonSchemaViolation): string {
  return `at \`${v.pointer === '' ? '/' : v.pointer}\`: ${v.message} (keyword \`${v.keyword}\`)`;
}
