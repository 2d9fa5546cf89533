/**
 * Partition-scoped operators, for scale-out: one instance of a stateful operator per source
 * partition (`meta.position` `topic` + `partition`, as a source with partitioned positions
 * names them: `core/partitions.ts`), so the state of a partition can move to the
 * process that is assigned the partition, with the partition's offset (see
 * `src/checkpoint/partitions.ts`).
 *
 * Each instance sees only its partition's records, in order, and keeps its own watermark (the
 * watermarks of the instances are not forwarded downstream: they would go back when a
 * partition arrives with older event times). Results therefore depend only on the partition's
 * records, which makes a re-played partition give the same results on any process. The rule
 * this implies: records that must be aggregated together (one window key) must be in one
 * partition — with Kafka, produce them with that key as the message key.
 */

import { PartitionSlices } from '../checkpoint/partitions.ts';
import { type Batch, batchOf, type RecordMeta, type Signal } from '../core/message.ts';
import { partitionOfRecord } from '../core/partitions.ts';
import type { Emitter, Operator, StageContext } from '../core/stage.ts';

interface Slice {
  readonly op: Operator;
  /** The load generation it was built at (see `PartitionStateAccess.generation`). */
  readonly gen: number;
}

/**
 * Runs one operator made by `create` per source partition. `create` must make a fresh, unopened
 * operator each call. Without `ctx.partitionState` (no partition-scoped checkpoints) the slices
 * still work but nothing is loaded or stored per partition.
 *
 * @example
 * pipeline.from(kafkaSource(opts)).via(partitionScoped(() => windowOperator({ key: 'user', time: 'ts', tumbling: '1m', aggregate: { n: 'count()' } })));
 */
export function partitionScoped(create: () => Operator): Operator {
  const slices = new Map<string, Slice>();
  let ctx: StageContext;
  /** What the slices may emit: everything but watermarks (see the module comment). */
  let sliceOut: Emitter<unknown> | undefined;
  let downstream: Emitter<unknown> | undefined;

  function emitterFor(out: Emitter<unknown>): Emitter<unknown> {
    if (downstream !== out || sliceOut === undefined) {
      downstream = out;
      sliceOut = {
        emit: (batch, port) => out.emit(batch, port),
        signal: (s: Signal) => (s.kind === 'watermark' ? Promise.resolve() : out.signal(s)),
      };
    }
    return sliceOut;
  }

  async function sliceFor(p: string): Promise<Operator> {
    const access = ctx.partitionState;
    const gen = access?.generation(p) ?? 0;
    const s = slices.get(p);
    if (s !== undefined && s.gen === gen) return s.op;
    // New, or loaded again since it was built (the partition came back): the loaded state is the truth.
    if (s !== undefined) await s.op.close?.();
    const op = create();
    await op.open?.(ctx);
    const state = access?.loaded(ctx.name, p);
    if (state !== undefined) await op.restore?.(state);
    slices.set(p, { op, gen });
    return op;
  }

  return {
    open(c) {
      ctx = c;
    },
    async process(batch: Batch<unknown>, out) {
      const { records, meta } = batch;
      const o = emitterFor(out);
      // Runs of one partition (a Kafka fetch gives long ones): ranges per partition, in order.
      const runs = new Map<string, number[]>();
      let lastTopic: unknown;
      let lastPartition: unknown;
      let run: number[] | undefined;
      for (let i = 0; i < records.length; i++) {
        const pos = meta?.[i]?.position;
        const topic = pos?.topic;
        const partition = pos?.partition;
        if (run !== undefined && topic === lastTopic && partition === lastPartition) continue;
        if (run !== undefined) run.push(i);
        const key = partitionOfRecord(meta?.[i]);
        run = runs.get(key);
        if (run === undefined) {
          run = [];
          runs.set(key, run);
        }
        run.push(i);
        lastTopic = topic;
        lastPartition = partition;
      }
      run?.push(records.length);
      for (const [p, ranges] of runs) {
        const op = await sliceFor(p);
        if (ranges.length === 2 && ranges[0] === 0 && ranges[1] === records.length) {
          await op.process(batch, o); // the whole batch is one partition's
          continue;
        }
        const rs: unknown[] = [];
        const ms: (RecordMeta | undefined)[] = [];
        for (let k = 0; k < ranges.length; k += 2) {
          for (let i = ranges[k] as number, end = ranges[k + 1] as number; i < end; i++) {
            rs.push(records[i]);
            ms.push(meta?.[i]);
          }
        }
        await op.process(batchOf(rs, ms), o);
      }
    },
    async onSignal(signal, out) {
      if (signal.kind === 'barrier') return out.signal(signal);
      const o = emitterFor(out);
      for (const s of slices.values()) {
        if (s.op.onSignal !== undefined) await s.op.onSignal(signal, o);
      }
    },
    nextTimer() {
      let t: number | undefined;
      for (const s of slices.values()) {
        const due = s.op.nextTimer?.();
        if (due !== undefined && (t === undefined || due < t)) t = due;
      }
      return t;
    },
    async onTimer(now, out) {
      const o = emitterFor(out);
      for (const s of slices.values()) {
        const due = s.op.nextTimer?.();
        if (due !== undefined && due <= now) await s.op.onTimer?.(now, o);
      }
    },
    async finish(out) {
      const o = emitterFor(out);
      const access = ctx.partitionState;
      if (access === undefined) {
        for (const s of slices.values()) await s.op.finish?.(o);
        return;
      }
      // Owned partitions only (a revoked one is the new owner's to finish), including those
      // loaded with state but without a record since: their windows fire too.
      for (const p of access.owned()) {
        const s = slices.get(p);
        const stale = s === undefined || s.gen !== access.generation(p);
        if (stale && access.loaded(ctx.name, p) === undefined) continue;
        await (await sliceFor(p)).finish?.(o);
      }
    },
    metrics() {
      const sum: Record<string, number> = { partitionSlices: slices.size };
      for (const s of slices.values()) {
        const m = s.op.metrics?.();
        if (m === undefined) continue;
        for (const [k, v] of Object.entries(m)) sum[k] = (sum[k] ?? 0) + v;
      }
      return sum;
    },
    snapshot(checkpointId) {
      // Slices of partitions the sources no longer have are released; slices built before the
      // partition was loaded again are stale (the loaded state replaces them on the next record).
      const positions = ctx.checkpointPositions?.(checkpointId);
      const owned = new Set<string>();
      for (const pos of Object.values(positions ?? {}))
        if (pos !== undefined) for (const k in pos) owned.add(k);
      const access = ctx.partitionState;
      const out = new Map<string, unknown>();
      for (const [p, s] of slices) {
        if (
          access !== undefined &&
          ((positions !== undefined && !owned.has(p)) || access.generation(p) !== s.gen)
        ) {
          slices.delete(p);
          void s.op.close?.();
          continue;
        }
        out.set(p, s.op.snapshot?.(checkpointId));
      }
      return new PartitionSlices(out);
    },
    async restore(state) {
      // A checkpoint of the whole pipeline (partition-scoped operator, pipeline-scoped checkpoints).
      const saved = state instanceof PartitionSlices ? state.slices : (state as { slices?: unknown })?.slices;
      if (!(saved instanceof Map)) return;
      for (const [p, slice] of saved as Map<string, unknown>) {
        const op = create();
        await op.open?.(ctx);
        await op.restore?.(slice);
        slices.set(p, { op, gen: ctx.partitionState?.generation(p) ?? 0 });
      }
    },
    async close() {
      for (const s of slices.values()) await s.op.close?.();
      slices.clear();
    },
  };
}
