/**
 * The JSON Schema of the pipeline file format (`sluice schema`), generated from the registry's
 * zod schemas, so editors validate and complete pipeline files with the same rules as
 * `sluice lint`.
 */
import { z } from 'zod';
import type { ComponentKind, ComponentSpec, Registry } from '../spec/registry.ts';
import { pipelineKeySchemas } from './keys.ts';

type JsonSchema = Record<string, unknown>;

/** The JSON Schema (draft 2020-12) of a config value, as written in YAML (defaults optional). */
export function configJsonSchema(schema: z.ZodType): JsonSchema {
  const out = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    target: 'draft-2020-12',
  }) as JsonSchema;
  delete out.$schema;
  closeObjects(out);
  return out;
}

// `sluice lint` rejects fields a component does not know, so the editor schema does too.
function closeObjects(node: unknown): void {
  if (Array.isArray(node)) {
    for (const n of node) closeObjects(n);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const o = node as JsonSchema;
  if (o.type === 'object' && o.properties !== undefined && o.additionalProperties === undefined)
    o.additionalProperties = false;
  for (const v of Object.values(o)) closeObjects(v);
}

function componentEntry(spec: ComponentSpec, siblings: readonly ('name' | 'buffer')[]): JsonSchema {
  const properties: JsonSchema = { [spec.name]: { $ref: `#/$defs/${spec.kind}.${spec.name}` } };
  if (siblings.includes('name'))
    properties.name = { type: 'string', description: 'Stage name (unique in the pipeline).' };
  if (siblings.includes('buffer')) properties.buffer = { $ref: '#/$defs/buffer' };
  return {
    type: 'object',
    title: spec.name,
    description: spec.summary,
    properties,
    required: [spec.name],
    additionalProperties: false,
  };
}

/**
 * Builds the JSON Schema of pipeline files for the components in `registry`: each component
 * position is a `oneOf` of one-key objects (one per component of the right kind), with the
 * component's config schema and descriptions.
 *
 * @example
 * const schema = pipelineJsonSchema(defaultRegistry);
 * console.log(JSON.stringify(schema, null, 2));
 */
export function pipelineJsonSchema(registry: Registry): JsonSchema {
  const defs: Record<string, JsonSchema> = {};
  for (const spec of registry.list()) {
    defs[`${spec.kind}.${spec.name}`] = {
      description: spec.summary,
      ...configJsonSchema(spec.config as z.ZodType),
    };
  }
  const oneOf = (kind: ComponentKind, siblings: readonly ('name' | 'buffer')[]) => {
    const entries = registry.list(kind).map((s) => componentEntry(s, siblings));
    return entries.length > 0 ? { oneOf: entries } : { not: {}, description: `No ${kind} is registered.` };
  };
  defs.source = {
    description: 'Where records come from: one source as `{kind: config}`.',
    ...oneOf('source', ['name']),
  };
  defs.sink = {
    description: 'Where records go: one sink as `{kind: config}`.',
    ...oneOf('sink', ['name', 'buffer']),
  };
  defs.dlqSink = { description: 'The sink that takes dead letters.', ...oneOf('sink', ['name']) };
  defs.module = {
    type: 'object',
    title: 'module',
    description:
      'Your own code: a module whose export is a function `(record) => record | record[] | undefined` or an operator object.',
    properties: {
      module: {
        anyOf: [
          { type: 'string', description: 'Path of the module, relative to the pipeline file.' },
          {
            type: 'object',
            properties: {
              path: { type: 'string', description: 'Path of the module, relative to the pipeline file.' },
              export: { type: 'string', default: 'default', description: 'Name of the export to use.' },
            },
            required: ['path'],
            additionalProperties: false,
          },
        ],
      },
      name: { type: 'string', description: 'Stage name (unique in the pipeline).' },
      buffer: { $ref: '#/$defs/buffer' },
      parallelism: {
        anyOf: [{ const: 'auto' }, { type: 'integer', minimum: 1, maximum: 256 }],
        description: 'Worker threads running the function: 1 to 256, or `auto` (available cores).',
      },
      key: {
        anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
        description: 'Field, or fields, of the key: the records of one key run on one worker, in order.',
      },
    },
    required: ['module'],
    additionalProperties: false,
  };
  const operators = registry.list('operator').map((s) => componentEntry(s, ['name', 'buffer']));
  defs.step = {
    description: 'One step: an operator as `{kind: config}`, or `module:`.',
    oneOf: [...operators, { $ref: '#/$defs/module' }],
  };
  defs.buffer = configJsonSchema(pipelineKeySchemas.buffer);
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Sluice pipeline',
    description: 'A Sluice pipeline file: an input, steps in order, and outputs.',
    type: 'object',
    properties: {
      name: configJsonSchema(pipelineKeySchemas.name),
      input: { $ref: '#/$defs/source' },
      inputs: {
        type: 'object',
        description:
          'Named sources (instead of `input`), joined by the first step (`join`), which names them.',
        minProperties: 1,
        additionalProperties: { $ref: '#/$defs/source' },
      },
      pipeline: { type: 'array', description: 'Steps, in order.', items: { $ref: '#/$defs/step' } },
      output: {
        description: 'One sink, or a list of sinks (fan-out: each gets every record).',
        anyOf: [{ $ref: '#/$defs/sink' }, { type: 'array', minItems: 1, items: { $ref: '#/$defs/sink' } }],
      },
      outputs: {
        type: 'object',
        description:
          'Named side outputs: each step port of the same name (a route, a window’s `late`) goes to its sink.',
        additionalProperties: { $ref: '#/$defs/sink' },
      },
      dlq: { $ref: '#/$defs/dlqSink' },
      checkpoint: configJsonSchema(pipelineKeySchemas.checkpoint),
      maxErrorRate: configJsonSchema(pipelineKeySchemas.maxErrorRate),
      channelCapacity: configJsonSchema(pipelineKeySchemas.channelCapacity),
      maxStateBytes: configJsonSchema(pipelineKeySchemas.maxStateBytes),
      connections: configJsonSchema(pipelineKeySchemas.connections),
      http: configJsonSchema(pipelineKeySchemas.http),
    },
    required: ['output'],
    oneOf: [{ required: ['input'] }, { required: ['inputs'] }],
    additionalProperties: false,
    $defs: defs,
  };
}
