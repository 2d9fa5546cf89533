/**
 * YAML specs of the keyed money steps: `serial` (per-key serial processing with a checkpointed
 * value per key, the function from a module) and `dedupe` (idempotency by id within a horizon).
 *
 * ```yaml
 * pipeline:
 *   - dedupe: { key: id, time: ts, horizon: 1h }
 *   - serial: { keys: [from, to], concurrency: 32, step: { module: ./apply.ts }, ports: [rejected] }
 * ```
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { Operator } from '../core/stage.ts';
import { durationField } from '../spec/fields.ts';
import { defineComponent } from '../spec/registry.ts';
import { dedupe } from './dedupe.ts';
import { importFunction } from './module-function.ts';
import { httpCall, type SagaStepContext, saga } from './saga.ts';
import { kafkaCall, SagaProducers } from './saga-kafka.ts';
import { postgresCall, SagaPools } from './saga-postgres.ts';
import { type SerialFn, serial } from './serial.ts';

const keyField = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .describe('The field holding the key, or several fields forming one composite key.');

/** `step:` of a `serial` — the module whose export is the per-record function. */
const moduleRef = z
  .object({
    module: z
      .union([
        z.string().min(1),
        z.object({ path: z.string().min(1), export: z.string().min(1).default('default') }).strict(),
      ])
      .describe(
        'Module (relative to the pipeline file) exporting `(record, state) => record | record[] | undefined`; `{ path, export }` names an export other than `default`.',
      ),
  })
  .strict();

/**
 * An operator whose function is imported from `path` in `open` (building must do no I/O: `sluice
 * lint` builds the pipeline too), then run by `make(fn)`.
 */
function moduleOperator<F>(path: string, exportName: string, make: (fn: F) => Operator): Operator {
  let inner: Operator | undefined;
  const loaded = (): Operator => {
    if (inner === undefined) throw new SluiceError(ErrorCode.STAGE, `module \`${path}\` is not loaded`);
    return inner;
  };
  return {
    async open(ctx) {
      const fn = await importFunction<F>(path, exportName, '(record, state) => …');
      inner = make(fn);
      await inner.open?.(ctx);
    },
    process: (batch, out) => loaded().process(batch, out),
    snapshot: (id) => loaded().snapshot?.(id),
    restore: (state) => loaded().restore?.(state),
    close: () => inner?.close?.(),
  };
}

/** `serial`: per-key serial processing with a checkpointed value per key. */
export const serialSpec = defineComponent({
  name: 'serial',
  kind: 'operator',
  stability: 'experimental',
  summary:
    'Runs a module’s function on each record one at a time per key, in input order, keys concurrently, with a checkpointed value per key.',
  description:
    'A record runs only after every earlier record of any of its keys finished (`keys: [from, to]`: a transfer waits for both accounts), ' +
    'so the result equals running the records one by one in order. The function gets `(record, state)`: `state.get(key?)` and ' +
    '`state.set(value, key?)` read and write a value per key (stored only if the function succeeds; checkpointed), `state.emit(record, port)` ' +
    'sends to a side output. It returns a record, an array or nothing; a throw dead-letters the record. Results leave in input order.',
  config: z
    .object({
      key: keyField.optional(),
      keys: z
        .array(z.string().min(1))
        .min(1)
        .optional()
        .describe('Instead of `key`: fields each holding one key of the record (a transfer’s `[from, to]`).'),
      concurrency: z
        .number()
        .int()
        .min(1)
        .default(8)
        .describe('Most calls in flight at once (different keys).'),
      step: moduleRef.describe('The per-record function.'),
      ports: z
        .array(z.string().min(1))
        .optional()
        .describe(
          'Side outputs the function emits on (each an `outputs:` entry). Default: any output not claimed.',
        ),
    })
    .strict()
    .refine((c) => (c.key === undefined) !== (c.keys === undefined), {
      message: 'give exactly one of `key` and `keys`',
    }),
  examples: [
    {
      title: 'Balances per account, overdrafts to `rejected`',
      yaml: 'keys: [from, to]\nconcurrency: 32\nstep: { module: ./apply.ts }\nports: [rejected]',
    },
  ],
  ports: (config) => config.ports,
  create(config, ctx) {
    const ref = config.step.module;
    const path = typeof ref === 'string' ? ref : ref.path;
    const exportName = typeof ref === 'string' ? 'default' : ref.export;
    const abs = isAbsolute(path) ? path : resolve(ctx.baseDir, path);
    const keyOptions = config.key !== undefined ? { key: config.key } : { keys: config.keys as string[] };
    // Validates the options now, so `sluice lint` reports them.
    serial({ ...keyOptions, concurrency: config.concurrency, fn: () => undefined });
    return moduleOperator<SerialFn<unknown, unknown>>(abs, exportName, (fn) =>
      serial({
        ...keyOptions,
        concurrency: config.concurrency,
        fn,
        ...(config.ports ? { ports: config.ports } : {}),
      }),
    );
  },
});

/** `dedupe`: drops records whose id was seen within a horizon. */
export const dedupeSpec = defineComponent({
  name: 'dedupe',
  kind: 'operator',
  stability: 'experimental',
  summary:
    'Lets the first record of each id through and drops repeats seen within a horizon; the ids are checkpointed.',
  description:
    'The horizon bounds the ids kept: `maxIds` (the most recent ones), `time` + `horizon` (event time: an id is forgotten once a record ' +
    '`horizon` newer was seen; a record older than that is dead-lettered, as it cannot be told from a forgotten id) or `ttl` (processing time).',
  config: z
    .object({
      key: keyField,
      maxIds: z
        .number()
        .int()
        .min(1)
        .optional()
        .describe('Remember at most this many ids (the most recent).'),
      time: z.string().min(1).optional().describe('Event-time field (epoch ms or ISO-8601) for `horizon`.'),
      horizon: durationField()
        .optional()
        .describe('With `time`: how far behind the newest event time ids are kept (`1h`).'),
      ttl: durationField()
        .optional()
        .describe('Without `time`: how long after it was first seen an id is kept (`10m`).'),
    })
    .strict()
    .refine((c) => c.maxIds !== undefined || c.horizon !== undefined || c.ttl !== undefined, {
      message: 'give a horizon: `maxIds`, `time` + `horizon`, or `ttl`',
    })
    .refine((c) => (c.time === undefined) === (c.horizon === undefined), {
      message: '`time` and `horizon` go together',
    }),
  examples: [
    {
      title: 'A retried transfer within an hour (event time) passes once',
      yaml: 'key: id\ntime: ts\nhorizon: 1h',
    },
    { title: 'The last million ids', yaml: 'key: id\nmaxIds: 1000000' },
  ],
  create: (config) =>
    dedupe({
      key: config.key,
      ...(config.maxIds !== undefined ? { maxIds: config.maxIds } : {}),
      ...(config.time !== undefined ? { time: config.time } : {}),
      ...(config.horizon !== undefined ? { horizon: config.horizon } : {}),
      ...(config.ttl !== undefined ? { ttl: config.ttl } : {}),
    }),
});

/** An action or compensation of a `saga` step: HTTP, PostgreSQL, Kafka or a module's function. */
const SAGA_CALL_KINDS = ['http', 'postgres', 'kafka', 'module'] as const;
const sagaCall = z
  .object({
    http: z
      .object({
        url: z.string().url().describe('Called with the record as JSON and an `Idempotency-Key` header.'),
        method: z.string().min(1).default('POST'),
      })
      .strict(),
    postgres: z
      .object({
        url: z
          .string()
          .min(1)
          .describe(
            `Connection URL, e.g. \`postgres://user:password@127.0.0.1:5432/db\` (the password from the environment: \`\${PGPASSWORD}\` in YAML).`,
          ),
        statement: z
          .string()
          .min(1)
          .describe(
            "One SQL statement, run in a transaction with the claim of the call's idempotency key, so it takes effect once per saga step.",
          ),
        params: z
          .array(z.string().min(1))
          .default([])
          .describe('The record fields passed as `$1`, `$2`, … (as text; cast them in the statement).'),
        minRows: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe(
            'Fail the step (no retry) when the statement touches fewer rows, e.g. `1` for an UPDATE of one account.',
          ),
        table: z
          .string()
          .min(1)
          .default('sluice_saga_calls')
          .describe('The table of done calls (created when missing), keyed by idempotency key.'),
      })
      .strict(),
    kafka: z
      .object({
        brokers: z
          .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
          .transform((b) => (typeof b === 'string' ? b.split(',').map((x) => x.trim()) : b))
          .describe('Bootstrap brokers, `host:port` (a list or comma-separated).'),
        topic: z.string().min(1).describe('The topic the event goes to (keyed by the saga id).'),
        type: z.string().min(1).optional().describe("The event's `type` field, e.g. `debit-requested`."),
      })
      .strict(),
    module: z
      .string()
      .min(1)
      .describe(
        'Module exporting (default export) `async ({ record, sagaId, idempotencyKey, signal }) => …` (SQL, Kafka…).',
      ),
  })
  .partial()
  .strict()
  .superRefine((c, refine) => {
    const kinds = SAGA_CALL_KINDS.filter((k) => c[k] !== undefined);
    if (kinds.length !== 1)
      refine.addIssue({
        code: 'custom',
        message: `give exactly one of ${SAGA_CALL_KINDS.map((k) => `\`${k}\``).join(', ')}${kinds.length > 1 ? ` (found ${kinds.map((k) => `\`${k}\``).join(' and ')})` : ''}`,
      });
  });

/** A module's default export, imported on first use (building does no I/O). */
function lazyModuleCall(path: string) {
  let fn: Promise<(ctx: SagaStepContext<unknown>) => Promise<unknown>> | undefined;
  return async (ctx: SagaStepContext<unknown>) => {
    fn ??= import(pathToFileURL(path).href).then((m: Record<string, unknown>) => {
      if (typeof m.default !== 'function')
        throw new SluiceError(
          ErrorCode.CONFIG,
          `module \`${path}\` must export a default function`,
          {},
          { retryable: false },
        );
      return m.default as (ctx: SagaStepContext<unknown>) => Promise<unknown>;
    });
    return (await fn)(ctx);
  };
}

/** `saga`: a named sequence of actions with compensations, per record, with a durable log. */
export const sagaSpec = defineComponent({
  name: 'saga',
  kind: 'operator',
  stability: 'experimental',
  summary:
    'Runs a sequence of steps (action + compensation: HTTP, a PostgreSQL statement, a Kafka event or a module) per record and emits one outcome per saga: `completed`, `compensated` or `failed`.',
  description:
    'Each call gets the idempotency key `<sagaId>:<step>` (`…:compensate`): sent as `Idempotency-Key` over HTTP; claimed in a table ' +
    '(`sluice_saga_calls`) in the same transaction as a `postgres` statement, so the statement takes effect once; sent as the ' +
    '`idempotency-key` header of a `kafka` event (a consumer applies it once). A step is retried with backoff ' +
    '(408/429/5xx/timeouts; another 4xx fails at once) until `retry.giveUp`; then the steps done are compensated in reverse order. Every ' +
    'transition is fsynced to `log` before the saga goes on, so a restarted run resumes an interrupted saga where it was (never re-running a ' +
    'logged action, finishing a compensation) and re-emits the outcome of one that had ended. The outcome record: `{ sagaId, status, step?, error?, compensation?, record }`.',
  config: z
    .object({
      id: keyField.describe('The field (or fields) holding the saga id.'),
      steps: z
        .array(
          z
            .object({
              name: z.string().min(1),
              action: sagaCall,
              compensate: sagaCall.optional(),
              timeout: durationField().prefault('10s').describe('Longest one attempt may take.'),
              retry: z
                .object({
                  minDelay: durationField().prefault('100ms'),
                  maxDelay: durationField().prefault('2s'),
                  giveUp: durationField()
                    .prefault('30s')
                    .describe('Stop retrying (and compensate) after failing this long.'),
                })
                .strict()
                .prefault({}),
            })
            .strict(),
        )
        .min(1),
      concurrency: z.number().int().min(1).default(8).describe('Sagas run at once.'),
      log: z
        .string()
        .min(1)
        .optional()
        .describe('The durable saga log file. Default `.sluice/<pipeline>/saga-<stage>.log`.'),
    })
    .strict(),
  examples: [
    {
      title: 'Reserve, charge, ship; a refused charge releases the reservation',
      yaml:
        'id: orderId\nsteps:\n  - name: reserve\n    action: { http: { url: "http://127.0.0.1:8080/reserve" } }\n    compensate: { http: { url: "http://127.0.0.1:8080/release" } }\n' +
        '  - name: charge\n    action: { http: { url: "http://127.0.0.1:8080/charge" } }\n    timeout: 5s\n    retry: { giveUp: 1m }',
    },
    {
      title:
        'A transfer: debit A, credit B, compensate A when B cannot be credited (PostgreSQL), and an event',
      yaml: `id: id
steps:
  - name: debit
    action:
      postgres:
        url: postgres://sluice:\${PGPASSWORD}@127.0.0.1:5432/sluice
        statement: UPDATE accounts SET balance = balance - $2::numeric WHERE id = $1
        params: [from, amount]
        minRows: 1
    compensate:
      postgres:
        url: postgres://sluice:\${PGPASSWORD}@127.0.0.1:5432/sluice
        statement: UPDATE accounts SET balance = balance + $2::numeric WHERE id = $1
        params: [from, amount]
  - name: credit
    action:
      postgres:
        url: postgres://sluice:\${PGPASSWORD}@127.0.0.1:5432/sluice
        statement: UPDATE accounts SET balance = balance + $2::numeric WHERE id = $1 AND open
        params: [to, amount]
        minRows: 1
  - name: notify
    action: { kafka: { brokers: 127.0.0.1:9092, topic: transfers, type: transfer-completed } }
`,
    },
  ],
  create(config, ctx) {
    const pools = new SagaPools();
    const producers = new SagaProducers();
    const call = (c: z.output<typeof sagaCall>) => {
      if (c.http !== undefined) return httpCall<unknown>({ url: c.http.url, method: c.http.method });
      if (c.postgres !== undefined) return postgresCall<unknown>(c.postgres, pools);
      if (c.kafka !== undefined) return kafkaCall<unknown>(c.kafka, producers);
      const module = c.module as string; // the refinement leaves exactly one kind
      return lazyModuleCall(isAbsolute(module) ? module : resolve(ctx.baseDir, module));
    };
    const log = config.log ?? `.sluice/${ctx.pipelineName}/saga-${ctx.stageName}.log`;
    return saga<unknown>({
      id: config.id,
      concurrency: config.concurrency,
      release: async () => {
        await Promise.all([pools.close(), producers.close()]);
      },
      log: isAbsolute(log) ? log : resolve(ctx.baseDir, log),
      steps: config.steps.map((st) => ({
        name: st.name,
        action: call(st.action),
        ...(st.compensate !== undefined ? { compensate: call(st.compensate) } : {}),
        timeoutMs: st.timeout,
        retry: { minDelayMs: st.retry.minDelay, maxDelayMs: st.retry.maxDelay, timeoutMs: st.retry.giveUp },
      })),
    });
  },
});

/** The specs of this module, for the registry. */
export const keyedSpecs = [serialSpec, dedupeSpec, sagaSpec] as const;
