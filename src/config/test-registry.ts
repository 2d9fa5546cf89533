/**
 * Tiny components for the tests of config loading, graph building and the CLI, independent of
 * the real connectors: a `memory` source, a `ticker` source that runs until stopped, a
 * `collect` sink that keeps records in {@link collected}, and `tag`, `split` and `reject`
 * operators.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { batchOf } from '../core/message.ts';
import { defineComponent, Registry } from '../spec/registry.ts';

/** Records written by `collect` sinks, by their `id`. */
export const collected = new Map<string, unknown[]>();

/** A registry holding only the test components. */
export function testRegistry(): Registry {
  return new Registry().add(
    defineComponent({
      name: 'memory',
      kind: 'source',
      stability: 'stable',
      summary: 'Emits the records given in its config.',
      config: z.object({
        records: z.array(z.unknown()).default([]).describe('The records to emit.'),
        batchSize: z.number().int().min(1).default(2).describe('Records per batch.'),
      }),
      examples: [{ title: 'Two records', yaml: 'records: [{ a: 1 }, { a: 2 }]' }],
      create: (c) => ({
        async run(out, ctx) {
          for (let i = 0; i < c.records.length; i += c.batchSize) {
            const records = c.records.slice(i, i + c.batchSize);
            const meta = records.map((_, k) => ({ source: ctx.name, position: { index: i + k } }));
            await out.emit(batchOf(records, meta));
          }
        },
        progress: () => ({ done: c.records.length, total: c.records.length, unit: 'records' as const }),
      }),
    }),
    defineComponent({
      name: 'ticker',
      kind: 'source',
      stability: 'experimental',
      summary: 'Emits `{ n }` records until stopped.',
      config: z.object({}),
      create: () => ({
        async run(out, ctx) {
          let n = 0;
          while (!ctx.stopSignal.aborted) {
            await out.emit(batchOf([{ n: n++ }]));
            await ctx.clock.sleep(1, AbortSignal.any([ctx.signal, ctx.stopSignal])).catch(() => {});
          }
        },
      }),
    }),
    defineComponent({
      name: 'collect',
      kind: 'sink',
      stability: 'stable',
      summary:
        'Keeps records in memory under an id (and writes them as JSON lines to `file` at the end, if given).',
      config: z.object({
        id: z.string().describe('Key in `collected`.'),
        file: z
          .string()
          .optional()
          .describe('File to write the records to at the end, relative to the pipeline file.'),
      }),
      create: (c, ctx) => {
        const records: unknown[] = [];
        collected.set(c.id, records);
        return {
          write(batch) {
            records.push(...batch.records);
          },
          finish() {
            if (c.file)
              writeFileSync(
                resolve(ctx.baseDir, c.file),
                records.map((r) => `${JSON.stringify(r)}\n`).join(''),
              );
          },
        };
      },
    }),
    defineComponent({
      name: 'tag',
      kind: 'operator',
      stability: 'beta',
      summary: 'Sets a field on every record.',
      config: z.object({
        field: z.string().describe('Field to set.'),
        value: z.unknown().describe('Value to set it to.'),
        mode: z.enum(['set', 'keep']).default('set').describe('`keep` leaves an existing value.'),
        size: z.number().int().min(1).default(10).describe('An unused number, for tests of number fields.'),
      }),
      create: (c) => ({
        process: (batch, out) =>
          out.emit(
            batchOf(
              batch.records.map((r) => {
                const rec = r as Record<string, unknown>;
                return c.mode === 'keep' && c.field in rec ? rec : { ...rec, [c.field]: c.value };
              }),
              batch.meta,
            ),
          ),
      }),
    }),
    defineComponent({
      name: 'split',
      kind: 'operator',
      stability: 'beta',
      summary: 'Sends records whose `field` equals a route value to the side output of that route.',
      config: z.object({
        field: z.string().describe('Field to look at.'),
        routes: z.record(z.string(), z.unknown()).describe('Side output name → value that selects it.'),
      }),
      ports: (c) => Object.keys(c.routes),
      create: (c) => ({
        async process(batch, out) {
          const rest: unknown[] = [];
          const byPort = new Map<string, unknown[]>();
          for (const r of batch.records) {
            const v = (r as Record<string, unknown>)[c.field];
            const port = Object.keys(c.routes).find((k) => c.routes[k] === v);
            if (port === undefined) rest.push(r);
            else byPort.set(port, [...(byPort.get(port) ?? []), r]);
          }
          for (const [port, records] of byPort) await out.emit(batchOf(records), port);
          await out.emit(batchOf(rest));
        },
      }),
    }),
    defineComponent({
      name: 'reject',
      kind: 'operator',
      stability: 'beta',
      summary: 'Dead-letters records that have `field` set, passes the others.',
      config: z.object({ field: z.string().describe('Field whose presence rejects the record.') }),
      create: (c) => {
        let dead: ((r: unknown, e: unknown) => void) | undefined;
        return {
          open(ctx) {
            dead = (r, e) => ctx.deadLetter(r, e);
          },
          process(batch, out) {
            const keep = batch.records.filter((r) => {
              if ((r as Record<string, unknown>)[c.field] === undefined) return true;
              dead?.(r, new SluiceError(ErrorCode.RECORD, `record has \`${c.field}\``));
              return false;
            });
            return out.emit(batchOf(keep));
          },
        };
      },
    }),
  );
}
