/**
 * The config fields of the schema-registry formats, shared by every connector that offers
 * `format: avro | protobuf | json-schema`: `schemaRegistry` (where the registry is, how to
 * authenticate), the reader's `readerSchema` / `descriptor` / `messageType`, and the writer's
 * `schema`, subject and registration. Files are read (and checked) when the component is
 * created, so `sluice lint` reports a bad schema file without a registry.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import { avroType } from './avro.ts';
import type { SchemaDecoderOptions, SchemaEncoderOptions } from './codec.ts';
import { jsonSchemaCheck } from './json-schema.ts';
import { protobufSchemas } from './protobuf.ts';
import type { SchemaRegistryOptions } from './registry.ts';

/** `schemaRegistry:` — the registry's URL, credentials, TLS and retry settings. */
export const schemaRegistryField = z
  .object({
    url: z
      .string()
      .regex(/^https?:\/\//, 'must be an http:// or https:// URL')
      .describe(
        'Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:8081` (Confluent) or `http://127.0.0.1:8081/apis/ccompat/v7` (Apicurio).',
      ),
    username: z.string().optional().describe(`Basic auth user (use \`\${ENV_VAR}\` for secrets).`),
    password: z.string().optional().describe('Basic auth password.'),
    token: z.string().optional().describe('Bearer token, sent as `Authorization: Bearer …`.'),
    ca: z.string().optional().describe('TLS: file of extra CA certificates (PEM).'),
    cert: z.string().optional().describe('TLS: client certificate file (PEM).'),
    key: z.string().optional().describe('TLS: client key file (PEM).'),
    insecure: z
      .boolean()
      .default(false)
      .describe('TLS: accept a server certificate that does not verify (tests only).'),
    retries: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(5)
      .describe(
        'Retries of a request that failed for a reason a retry can cure (no answer, 5xx), with backoff from 200 ms.',
      ),
  })
  .strict()
  .describe('The schema registry, for `format: avro | protobuf | json-schema` (Confluent wire format).');

/** Fields a reader (source) adds. */
export const schemaReaderFields = {
  schemaRegistry: schemaRegistryField.optional(),
  readerSchema: z
    .string()
    .optional()
    .describe(
      'Avro: file of the reader schema (`.avsc`) every writer version is resolved against — added fields with defaults, removed fields, promoted types, aliases, enum defaults — so one pipeline reads every version of a topic in one shape. Default: each message in its writer’s shape.',
    ),
  descriptor: z
    .string()
    .optional()
    .describe(
      'Protobuf: a FileDescriptorSet file (`protoc --include_imports -o set.pb`) to decode with instead of the registry’s schemas.',
    ),
  messageType: z
    .string()
    .optional()
    .describe('Protobuf: full name of the message type (default: the one the message indexes name).'),
};

/** Fields a writer (sink) adds. */
export const schemaWriterFields = {
  schemaRegistry: schemaRegistryField.optional(),
  schema: z
    .string()
    .optional()
    .describe(
      'File of the writer schema (`.avsc`, `.proto`, JSON Schema). Default: the subject’s registered schema (`schemaVersion`).',
    ),
  subjectStrategy: z
    .enum(['topic', 'record', 'topic-record'])
    .default('topic')
    .describe(
      'Subject naming: `topic` → `<topic>-value`, `record` → the record’s full name, `topic-record` → `<topic>-<full name>`.',
    ),
  subject: z.string().optional().describe('An explicit subject (overrides `subjectStrategy`).'),
  autoRegister: z
    .boolean()
    .default(false)
    .describe(
      'Register `schema` under the subject when it is not there yet (a registry that finds it incompatible fails the start with its reason).',
    ),
  schemaVersion: z
    .union([z.literal('latest'), z.number().int().min(1)])
    .default('latest')
    .describe('Without `autoRegister`: the subject version to write with, `latest` or a pinned number.'),
  messageType: z
    .string()
    .optional()
    .describe('Protobuf: full name of the message type (default: the schema’s first message).'),
};

type RegistryConfig = z.output<typeof schemaRegistryField>;

function readText(baseDir: string, path: string, what: string): string {
  try {
    return readFileSync(resolve(baseDir, path), 'utf8');
  } catch (err) {
    throw new SluiceError(ErrorCode.CONFIG, `reading ${what} \`${path}\`: ${(err as Error).message}`, {
      file: path,
    });
  }
}

/** The client options of a `schemaRegistry:` config (TLS files read). */
export function registryOptions(config: RegistryConfig, baseDir: string): SchemaRegistryOptions {
  return {
    url: config.url,
    username: config.username,
    password: config.password,
    token: config.token,
    ca: config.ca === undefined ? undefined : readText(baseDir, config.ca, 'the registry CA file'),
    cert:
      config.cert === undefined
        ? undefined
        : readText(baseDir, config.cert, 'the registry client certificate'),
    key: config.key === undefined ? undefined : readText(baseDir, config.key, 'the registry client key'),
    insecure: config.insecure,
    retries: config.retries,
  };
}

function needRegistry(
  format: string,
  config: { schemaRegistry?: RegistryConfig | undefined },
): RegistryConfig {
  if (config.schemaRegistry === undefined)
    throw new SluiceError(ErrorCode.CONFIG, `\`format: ${format}\` needs \`schemaRegistry: { url: … }\``);
  return config.schemaRegistry;
}

/** A reader's schema options from its config, files read and checked; undefined for other formats. */
export function readerOptions(
  format: string,
  config: {
    schemaRegistry?: RegistryConfig | undefined;
    readerSchema?: string | undefined;
    descriptor?: string | undefined;
    messageType?: string | undefined;
  },
  baseDir: string,
): Omit<SchemaDecoderOptions, 'format'> | undefined {
  if (format !== 'avro' && format !== 'protobuf' && format !== 'json-schema') return undefined;
  const registry = registryOptions(needRegistry(format, config), baseDir);
  let readerSchema: string | undefined;
  if (config.readerSchema !== undefined) {
    readerSchema = readText(baseDir, config.readerSchema, 'the reader schema');
    try {
      avroType(readerSchema);
    } catch (err) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `the reader schema \`${config.readerSchema}\` is not a valid Avro schema: ${(err as Error).message}`,
        { file: config.readerSchema },
      );
    }
  }
  let descriptorSet: Uint8Array | undefined;
  if (config.descriptor !== undefined) {
    try {
      descriptorSet = readFileSync(resolve(baseDir, config.descriptor));
    } catch (err) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `reading the descriptor \`${config.descriptor}\`: ${(err as Error).message}`,
      );
    }
    try {
      const s = protobufSchemas({ descriptorSet });
      if (config.messageType !== undefined) s.indexesOf(config.messageType);
    } catch (err) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `the descriptor \`${config.descriptor}\` is not a usable FileDescriptorSet: ${(err as Error).message}`,
        { file: config.descriptor },
      );
    }
  }
  return { registry, readerSchema, descriptorSet, messageType: config.messageType };
}

/** A writer's schema options from its config, the schema file read and checked. */
export function writerOptions(
  format: string,
  config: {
    schemaRegistry?: RegistryConfig | undefined;
    schema?: string | undefined;
    subjectStrategy: 'topic' | 'record' | 'topic-record';
    subject?: string | undefined;
    autoRegister: boolean;
    schemaVersion: number | 'latest';
    messageType?: string | undefined;
  },
  baseDir: string,
): Omit<SchemaEncoderOptions, 'format' | 'topic'> | undefined {
  if (format !== 'avro' && format !== 'protobuf' && format !== 'json-schema') return undefined;
  const registry = registryOptions(needRegistry(format, config), baseDir);
  let schema: string | undefined;
  if (config.schema !== undefined) {
    schema = readText(baseDir, config.schema, 'the schema');
    try {
      if (format === 'avro') avroType(schema);
      else if (format === 'protobuf') protobufSchemas({ proto: schema }).indexesOf(config.messageType);
      else jsonSchemaCheck(schema);
    } catch (err) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `the schema \`${config.schema}\` is not a valid ${format} schema: ${(err as Error).message}`,
        { file: config.schema },
      );
    }
  }
  return {
    registry,
    schema,
    subjectStrategy: config.subjectStrategy,
    subject: config.subject,
    autoRegister: config.autoRegister,
    version: config.schemaVersion,
    messageType: config.messageType,
  };
}
