/**
 * YAML specs of the parallel steps the TypeScript API has as `Stream.mapAsync`, `Stream.shard`
 * and `Stream.fanOut`:
 *
 * ```yaml
 * pipeline:
 *   - mapAsync: { http: { url: http://scorer/score, into: score }, concurrency: 16, ordered: key, key: user }
 *   - shard: { key: user, shards: 4, steps: [ { mapAsync: { module: ./enrich.ts, concurrency: 8 } } ] }
 *   - fanOut: { branches: { audit: { buffer: { size: 4, overflow: dropOldest } } } }
 * ```
 *
 * `shard` and `fanOut` hold nested steps ({@link ComponentSpec.segments}): the pipeline file's
 * checker validates them like `pipeline:` entries and the builder wires them.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_MAX_KEY_GROUPS } from '../core/keygroups.ts';
import type { Operator } from '../core/stage.ts';
import { bufferField, durationField } from '../spec/fields.ts';
import { type ComponentSpec, defineComponent } from '../spec/registry.ts';
import { type AsyncFn, flatMapAsync } from './async.ts';
import { httpRecordCall } from './http-call.ts';
import { importFunction } from './module-function.ts';
import { shard, shardPort } from './shard.ts';

const keyField = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .describe('The field holding the key, or a list of fields forming one composite key.');

const stepsField = z
  .array(z.unknown())
  .describe('Steps written as in `pipeline:` (components and `module:` steps; `shard` and `fanOut` nest).');

/** A name a branch (and its side output) may have: as in `outputs:`. */
const BRANCH_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

const moduleField = z
  .union([
    z.string().min(1),
    z.strictObject({ path: z.string().min(1), export: z.string().min(1).default('default') }),
  ])
  .describe(
    'Module (relative to the pipeline file) exporting `async (record, signal) => record | record[] | undefined` (`undefined`: drop the record); `{ path, export }` names an export other than `default`.',
  );

const httpField = z
  .strictObject({
    url: z
      .string()
      .regex(/^https?:\/\//, 'must be an `http://` or `https://` URL')
      .describe('The endpoint each record is sent to.'),
    method: z
      .enum(['GET', 'POST', 'PUT', 'PATCH'])
      .default('POST')
      .describe('`POST`, `PUT`, `PATCH`: the record is the JSON body; `GET`: no body.'),
    headers: z
      .record(z.string(), z.string())
      .optional()
      .describe(`Extra request headers (\`authorization: Bearer \${TOKEN}\`).`),
    timeout: durationField().prefault('10s').describe('Longest one request may take.'),
    into: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Put the JSON answer into this field of the record; without it the answer replaces the record.',
      ),
  })
  .describe(
    'Call an HTTP endpoint per record. A 2xx JSON answer becomes the record (or its `into` field), an empty answer keeps the record; a failure, timeout or other status dead-letters it (no retries).',
  );

/** `mapAsync`: a module function or an HTTP call per record, with bounded concurrency. */
export const mapAsyncSpec = defineComponent({
  name: 'mapAsync',
  kind: 'operator',
  stability: 'beta',
  summary:
    'Calls a module function or an HTTP endpoint for each record, `concurrency` calls at once, results in input order, completion order, or per-key order.',
  description:
    'Within a batch at most `concurrency` calls are in flight; the step returns when every call of the batch settled, so a watermark or checkpoint ' +
    'never overtakes a record. `ordered: true` emits in input order (a slow call holds back the ones after it); `false` in completion order; ' +
    '`key` runs one call at a time per `key` (keys overlap) and emits in completion order, so every key keeps its input order. A failed call ' +
    'dead-letters its record. Batches several times larger than `concurrency` (e.g. a `batch` step before) keep every slot busy.',
  config: z
    .strictObject({
      module: moduleField.optional(),
      http: httpField.optional(),
      concurrency: z
        .number()
        .int('`concurrency` is a whole number of calls in flight, e.g. 16')
        .min(1, '`concurrency` must be at least 1 (one call at a time)')
        .max(10_000, '`concurrency` above 10000 would open that many requests at once; use at most 10000')
        .default(8)
        .describe('Most calls in flight at once.'),
      ordered: z
        .literal([true, false, 'key'], {
          error:
            '`ordered` is `true` (input order), `false` (completion order) or `key` (input order per `key`)',
        })
        .default(true)
        .describe(
          '`true`: input order; `false`: completion order; `key`: one call at a time per key, input order per key.',
        ),
      key: keyField
        .optional()
        .describe('With `ordered: key`: the field (or fields) whose records stay in order.'),
    })
    .superRefine((c, ctx) => {
      if ((c.module === undefined) === (c.http === undefined))
        ctx.addIssue({
          code: 'custom',
          message:
            'give exactly one of `module` (your function, e.g. `module: ./score.ts`) and `http` (an endpoint, e.g. `http: { url: http://scorer/score }`)',
        });
      if (c.ordered === 'key' && c.key === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['key'],
          message:
            '`ordered: key` needs `key`: the field (or fields) whose records must stay in order, e.g. `key: userId`',
        });
      if (c.ordered !== 'key' && c.key !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['key'],
          message: '`key` is used only with `ordered: key`; remove it, or set `ordered: key`',
        });
    }),
  examples: [
    {
      title: 'Score each record over HTTP, 16 requests at once, per-user order',
      yaml: 'http: { url: "http://127.0.0.1:8080/score", into: score }\nconcurrency: 16\nordered: key\nkey: user',
    },
    {
      title: 'Your own async function, completion order',
      yaml: 'module: ./enrich.ts\nconcurrency: 32\nordered: false',
    },
  ],
  create(config, ctx) {
    const options = {
      concurrency: config.concurrency,
      ordered: config.ordered,
      ...(config.key === undefined ? {} : { key: config.key }),
    };
    if (config.http !== undefined) {
      const { url, method, headers, timeout, into } = config.http;
      const call = httpRecordCall({ url, method, headers, timeoutMs: timeout, into });
      return flatMapAsync(async (r, signal) => [await call(r, signal)], options);
    }
    const ref = config.module as z.output<typeof moduleField>;
    const path = typeof ref === 'string' ? ref : ref.path;
    const exportName = typeof ref === 'string' ? 'default' : ref.export;
    const abs = isAbsolute(path) ? path : resolve(ctx.baseDir, path);
    if (!existsSync(abs)) throw new Error(`module \`${path}\` not found (looked for ${abs})`);
    let fn: AsyncFn<unknown, unknown> | undefined;
    const inner = flatMapAsync(async (r, signal) => {
      const v = await (fn as AsyncFn<unknown, unknown>)(r, signal);
      return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
    }, options);
    return {
      async open(c) {
        fn = await importFunction<AsyncFn<unknown, unknown>>(
          abs,
          exportName,
          'async (record, signal) => record',
        );
        await inner.open?.(c);
      },
      process: (batch, out) => inner.process(batch, out),
    } satisfies Operator;
  },
});

/** `shard`: key-grouped copies of nested steps, per-key order kept. */
export const shardSpec = defineComponent({
  name: 'shard',
  kind: 'operator',
  stability: 'beta',
  summary:
    'Runs `shards` copies of its `steps` side by side, each record going to the copy that owns its key’s key group, and merges their outputs.',
  description:
    'Keys hash into `maxKeyGroups` key groups and each copy owns a contiguous range of them (as Flink), so records with the same key always take ' +
    'the same copy and keep their order, and changing `shards` moves whole key groups. The copies run in this process, on this thread: ' +
    'they pay where the steps wait (a `mapAsync`, a `lookup`), not for CPU-bound work. Stage names of the copies end in `.0`, `.1`, …',
  config: z
    .strictObject({
      key: keyField.optional(),
      shards: z
        .number()
        .int('`shards` is a whole number of copies, e.g. 4')
        .min(1, '`shards` must be at least 1')
        .describe('Copies of `steps` that run side by side (the parallelism).'),
      maxKeyGroups: z
        .number()
        .int()
        .min(1)
        .default(DEFAULT_MAX_KEY_GROUPS)
        .describe(
          'Key groups the key space is cut into: the most shards there can ever be. Keep it fixed for the life of the state.',
        ),
      steps: stepsField.min(
        1,
        'a `shard` needs at least one step in `steps`, e.g. `steps: [ { mapAsync: { … } } ]`',
      ),
    })
    .superRefine((c, ctx) => {
      if (c.key === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['key'],
          message:
            'a `shard` needs `key`: the field (or list of fields) whose records go to the same copy, e.g. `key: userId`',
        });
      if (c.shards > c.maxKeyGroups)
        ctx.addIssue({
          code: 'custom',
          path: ['shards'],
          message: `\`shards\` (${c.shards}) cannot exceed \`maxKeyGroups\` (${c.maxKeyGroups}); raise \`maxKeyGroups\` or use fewer shards`,
        });
    }),
  examples: [
    {
      title: 'Four copies of an HTTP step, per-user order',
      yaml: 'key: user\nshards: 4\nsteps:\n  - mapAsync: { http: { url: "http://127.0.0.1:8080/score" }, concurrency: 8 }',
    },
  ],
  ports: () => [],
  segments: (config) => ({
    layout: 'copies',
    ports: Array.from({ length: config.shards }, (_, i) => shardPort(i)),
    steps: { path: ['steps'], steps: config.steps },
  }),
  create: (config) =>
    shard({ key: config.key ?? [], shards: config.shards, maxKeyGroups: config.maxKeyGroups }),
});

const branchField = z.strictObject({
  steps: stepsField.default([]),
  buffer: bufferField()
    .optional()
    .describe('This branch’s buffer (size in batches, overflow policy); default the step’s `buffer`.'),
});

/** `fanOut`: every record to every branch, each through its own buffer. */
export const fanOutSpec = defineComponent({
  name: 'fanOut',
  kind: 'operator',
  stability: 'beta',
  summary:
    'Sends every record to each branch as well as down the main line; each branch has its own buffer and overflow policy, runs its own steps and ends at the side output of its name.',
  description:
    'Branch `audit` ends at `outputs.audit`. With overflow `block` (the default) a slow branch slows the whole pipeline once its buffer is full; ' +
    '`dropOldest` drops that branch’s oldest batches instead, so the main line and the other branches keep flowing; `error` fails the run.',
  config: z.strictObject({
    branches: z
      .record(
        z
          .string()
          .regex(BRANCH_NAME, 'a branch name uses letters, digits, `_` and `-` (it names its side output)'),
        branchField,
      )
      .refine((b) => Object.keys(b).length > 0, 'give at least one branch, e.g. `branches: { audit: {} }`')
      .refine((b) => !('out' in b) && !('dlq' in b), '`out` and `dlq` cannot name a branch')
      .describe('Branches by name; each ends at `outputs.<name>`.'),
    buffer: bufferField().optional().describe('Buffer of every branch that sets none.'),
  }),
  examples: [
    {
      title: 'An audit copy that may lose batches when its sink is slow',
      yaml: "branches:\n  audit:\n    buffer: { size: 4, overflow: dropOldest }\n    steps:\n      - filter: 'amount > 1000'",
    },
  ],
  ports: () => [],
  segments: (config) => ({
    layout: 'branches',
    branches: Object.entries(config.branches).map(([name, b]) => ({
      name,
      path: ['branches', name, 'steps'],
      steps: b.steps,
      buffer: b.buffer ?? config.buffer,
    })),
  }),
  create: () => ({ process: (batch, out) => out.emit(batch) }),
});

/** The specs of this module, for the registry. */
export const parallelSpecs: readonly ComponentSpec<'operator'>[] = [mapAsyncSpec, shardSpec, fanOutSpec];
