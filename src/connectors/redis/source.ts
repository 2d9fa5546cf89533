/**
 * The `redis` source: a member of a Redis Streams consumer group. It reads one or more streams
 * with `XREADGROUP`, decodes each entry (`json` or `raw`, one field or the whole entry) and emits
 * batches whose `meta.position` is `{ stream, id }` (`meta.timestamp`: the id's milliseconds).
 *
 * Delivery is at-least-once; an entry is acknowledged (`XACK`) only once the records it became
 * have reached every sink, never before:
 * - With checkpoints the runtime injects barriers; `position()` counts the entries handed on so
 *   far in this run, and `commit(position)` — called once the checkpoint holding it is stored —
 *   acknowledges exactly those. A checkpoint interval longer than `claimIdle` is safe: the source
 *   refreshes the idle time of what it holds (`XCLAIM … JUSTID`) so no other consumer takes it.
 * - Without checkpoints the source emits its own barrier after a batch, at most once per
 *   `commitInterval`, and acknowledges what preceded it in `onBarrierComplete(id)`.
 * - A clean end (idle timeout, or a draining stop without checkpoints) acknowledges everything
 *   handed on; a failed or cancelled run acknowledges nothing more.
 * - An entry that cannot be decoded goes to the `dlq` output with its stream, id and raw fields,
 *   and is acknowledged by the same rule (so only once the dlq sink has it).
 *
 * `position()` also lists the ids held (handed on, not acknowledged). A restore takes them as
 * covered by its checkpoint: met again in the first re-read of pending entries (their XACK had
 * not completed when the process died), they are held for the next commit, not emitted twice.
 *
 * On start the consumer first re-reads its own pending entries (`XREADGROUP … 0`), so a
 * restarted consumer of the same name loses nothing it had read. Restoring a checkpoint taken
 * under another consumer name (the default name carries the process id) first moves that
 * consumer's pending entries to this one (`XCLAIM`). With `claimIdle`, entries another consumer
 * left pending longer than that (it died) are taken over with `XAUTOCLAIM`. A Redis server that
 * cannot be reached is waited for with backoff, one warning per attempt.
 *
 * Split by role: `group.ts` (the group, its creation, taking over another consumer's pending
 * entries), `reads.ts` (the three reads and their cursors), `intake.ts` (entries → records or
 * dead letters), `acks.ts` (holding and acknowledging), `held.ts` (the held-entry queue). This
 * module runs the read loop and answers the {@link Source} contract.
 */

import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { connectRedis, startConnecting } from '../../clients/redis.ts';
import type { TlsConfig } from '../../clients/tls.ts';
import { cancelledError, ErrorCode, SluiceError } from '../../core/errors.ts';
import { barrier, type Position } from '../../core/message.ts';
import type { Emitter, Source, SourceContext } from '../../core/stage.ts';
import { redactUrl } from '../../core/url.ts';
import { Acknowledgements } from './acks.ts';
import type { RedisFormat } from './entry.ts';
import { adoptPending, ensureGroups, type GroupScope } from './group.ts';
import { MAX_LISTED, parseHeldText } from './held.ts';
import { EntryIntake, type Taken } from './intake.ts';
import { GroupReads } from './reads.ts';

/** Config of {@link redisSource} (the parsed YAML config). */
export interface RedisSourceOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS. */
  url: string;
  /** TLS settings (also turns TLS on for a `redis://` URL); see `clients/redis-tls.ts`. */
  tls?: TlsConfig | true | undefined;
  /** Stream keys to read. */
  streams: string[];
  /** Consumer group name; created (with `MKSTREAM`) when missing. */
  group: string;
  /** This consumer's name within the group. */
  consumer: string;
  /** Where a newly created group starts: `$` (new entries only), `0` (everything) or an entry id. */
  start: string;
  /** Most entries per read (and per emitted batch). */
  batchSize: number;
  /** Longest a read blocks waiting for new entries, ms. */
  block: number;
  /** Take over entries other consumers left pending this long (ms); undefined: never. */
  claimIdle?: number | undefined;
  /** How a field value becomes a record value. */
  format: RedisFormat;
  /** The entry field holding the payload; undefined: the whole entry as an object. */
  field?: string | undefined;
  /** With `format: json`: fields read as exact decimals (`*`: every number); see `decimalReviver`. */
  decimals?: readonly string[] | undefined;
  /** End the input after this many ms without an entry; undefined: run until stopped. */
  idleTimeout?: number | undefined;
  /** Without checkpoints: least time between two acknowledgement barriers, ms. */
  commitInterval: number;
  /** Longest wait between two connection attempts, ms. */
  maxRetryDelay?: number | undefined;
}

/** A {@link Source} reading Redis Streams; see {@link redisSource}. */
export interface RedisSource extends Source<unknown> {
  /** Entries acknowledged (`XACK`) so far. */
  readonly acked: number;
}

/** How long the acknowledgement at the end of a run may take before it is given up. */
const ACK_TIMEOUT_MS = 10_000;

/**
 * A source reading `options.streams` as consumer `options.consumer` of group `options.group`.
 *
 * @example
 * const source = redisSource({
 *   url: 'redis://127.0.0.1:6379', streams: ['events'], group: 'etl', consumer: 'worker-1',
 *   start: '0', batchSize: 500, block: 1000, format: 'json', field: 'data', commitInterval: 1000,
 * });
 * await new Pipeline('etl').from(source).to(fileSink({ path: 'out.jsonl', format: 'jsonl' })).run().done;
 */
export function redisSource(options: RedisSourceOptions): RedisSource {
  const { streams, group, consumer } = options;
  if (streams.length === 0)
    throw new SluiceError(ErrorCode.CONFIG, 'the redis source needs at least one stream');
  const names = streams.map((s) => `\`${s}\``).join(', ');
  const runId = randomUUID();
  let ctx: SourceContext;
  const scope: GroupScope = {
    streams,
    group,
    consumer,
    where: redactUrl(options.url),
    names,
    ctx: () => ctx,
  };
  /** Blocking reads only (a blocked connection can serve nothing else). */
  let reader: Redis | undefined;
  /** Everything else: group creation, acknowledgements, claims. */
  let cmd: Redis | undefined;
  const acks = new Acknowledgements(scope, () => cmd);
  const intake = new EntryIntake(scope, acks, options.field, options.format, options.decimals);
  let reads: GroupReads | undefined;
  /** The consumer whose pending entries a restored checkpoint covers, when not this one. */
  let adoptFrom: string | undefined;
  /** The restored checkpoint held too many entries to list them (then they are read again). */
  let coveredUnlisted = false;
  let records = 0;

  /** Emits what the intake collected, if anything; a barrier then covers everything handed on. */
  async function emitTaken(out: Emitter<unknown>, batch: Taken): Promise<void> {
    if (batch.records.length === 0) return;
    records += batch.records.length;
    acks.emitted();
    await out.emit({ kind: 'batch', records: batch.records, meta: batch.meta });
  }

  /**
   * Connects, creates the groups and takes over `adoptFrom`'s entries. Resolves false when the
   * run was stopped first (nothing was read); the setup's queued commands are then abandoned
   * when `close` disconnects.
   */
  async function setUp(c0: Redis, r0: Redis, stopOrCancel: AbortSignal): Promise<boolean> {
    const setup = (async () => {
      await Promise.all([startConnecting(c0), startConnecting(r0)]);
      await ensureGroups(c0, scope, options.start);
      if (adoptFrom !== undefined) await adoptPending(c0, scope, adoptFrom);
      return true;
    })();
    setup.catch(() => {});
    const stopped = new Promise<false>((resolve) => {
      if (stopOrCancel.aborted) resolve(false);
      else stopOrCancel.addEventListener('abort', () => resolve(false), { once: true });
    });
    return Promise.race([setup, stopped]);
  }

  /** The read loop: pending entries first, then claims when due, then new entries; barriers without checkpoints. */
  async function readLoop(out: Emitter<unknown>, r: GroupReads, stopOrCancel: AbortSignal): Promise<void> {
    let lastBarrierAt = ctx.clock.now();
    let lastDataAt = ctx.clock.now();
    let progressed = false;
    while (!stopOrCancel.aborted) {
      r.startRound();
      const batch: Taken = { records: [], meta: [] };
      let got = 0;
      const now = ctx.clock.now();
      if (r.rereading) {
        const n = await r.rereadPending(batch, stopOrCancel);
        if (n === undefined) break;
        got += n;
      } else if (r.claimDue(now)) got += await r.claim(batch, now, stopOrCancel);
      if (r.readingAhead || (got === 0 && !r.rereading)) {
        const idleLeft =
          options.idleTimeout === undefined ? Infinity : options.idleTimeout - (ctx.clock.now() - lastDataAt);
        const n = await r.readNew(batch, Math.min(options.block, idleLeft, r.claimEvery), stopOrCancel);
        if (n === undefined) break;
        got += n;
      }
      const after = ctx.clock.now();
      if (got > 0) {
        lastDataAt = after;
        progressed = true;
      }
      await emitTaken(out, batch);
      if (!ctx.checkpointing && progressed && after - lastBarrierAt >= options.commitInterval) {
        progressed = false;
        lastBarrierAt = after;
        await out.signal(barrier(acks.nextBarrier()));
      }
      if (
        got === 0 &&
        options.idleTimeout !== undefined &&
        r.settled &&
        after - lastDataAt >= options.idleTimeout
      )
        break;
    }
    if (r.readingAhead && !ctx.signal.aborted) {
      // A draining stop: what the read ahead delivered is emitted, not left pending.
      const batch: Taken = { records: [], meta: [] };
      await r.drainAhead(batch);
      await emitTaken(out, batch);
    }
  }

  return {
    get acked() {
      return acks.acked;
    },
    open(c) {
      ctx = c;
    },
    restore(position: Position) {
      const from = position.consumer;
      if (typeof from === 'string' && from !== consumer) adoptFrom = from;
      if (typeof position.held === 'string') intake.covered = parseHeldText(position.held, streams);
      else if (position.entries !== undefined) coveredUnlisted = true;
    },
    async run(out, c) {
      ctx = c;
      const local = new AbortController();
      const stopOrCancel = AbortSignal.any([ctx.signal, ctx.stopSignal]);
      const onCancel = (): void => {
        reader?.disconnect();
        cmd?.disconnect();
      };
      // A draining stop unblocks the blocked read (`CLIENT UNBLOCK`: it returns as if it timed
      // out, delivering nothing), so a stop does not wait for `block`. Should that fail, the
      // connection is cut after `block` + 2 s (what the read would have delivered stays pending
      // for this consumer and is read again on restart).
      let readerId: number | undefined;
      let stopTimer: ReturnType<typeof setTimeout> | undefined;
      const onStop = (): void => {
        if (readerId !== undefined) cmd?.client('UNBLOCK', readerId).catch(() => {});
        stopTimer = setTimeout(() => reader?.disconnect(), options.block + 2000);
      };
      ctx.signal.addEventListener('abort', onCancel, { once: true });
      ctx.stopSignal.addEventListener('abort', onStop, { once: true });
      const common = {
        url: options.url,
        tls: options.tls,
        log: ctx.log,
        stage: ctx.name,
        maxRetryDelay: options.maxRetryDelay,
      };
      cmd = connectRedis({ ...common, purpose: `serving group \`${group}\` of ${names}` });
      reader = connectRedis({ ...common, purpose: `reading ${names} as group \`${group}\`` });
      let keeper: Promise<void> | undefined;
      try {
        const c0 = cmd;
        const r0 = reader;
        if (!(await setUp(c0, r0, stopOrCancel))) {
          if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
          return;
        }
        if (coveredUnlisted)
          ctx.log.warn(
            `The restored checkpoint held more than ${MAX_LISTED} unacknowledged entries of ${names}, too many to list; those it covers and that are still pending are emitted again (duplicates)`,
            { stage: ctx.name },
          );
        const r = new GroupReads(scope, intake, options, r0, c0);
        reads = r;
        // After a reconnect, re-read this consumer's pending entries: a read whose reply was lost
        // with the connection left its entries pending here, and only a re-read finds them.
        const learnId = (): void => {
          r0.client('ID').then(
            (id) => {
              readerId = id;
            },
            () => {},
          );
        };
        r0.on('ready', () => {
          r.rescan();
          learnId();
        });
        learnId();
        if (options.claimIdle !== undefined)
          keeper = acks.keepAlive(
            Math.max(50, Math.floor(options.claimIdle / 3)),
            AbortSignal.any([local.signal, ctx.signal]),
          );
        await readLoop(out, r, stopOrCancel);
        if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
      } finally {
        local.abort();
        if (stopTimer !== undefined) clearTimeout(stopTimer);
        ctx.signal.removeEventListener('abort', onCancel);
        ctx.stopSignal.removeEventListener('abort', onStop);
        await keeper;
      }
    },
    async onBarrierComplete(id) {
      await acks.barrierComplete(id);
    },
    async commit(position: Position) {
      // A position of another run (one restored from) covers nothing this run holds.
      if (position.run !== runId || typeof position.entries !== 'number') return;
      await acks.through(position.entries);
    },
    position() {
      const text = acks.held.text();
      // `held`: what this checkpoint covers and is not acknowledged yet (see `restore`).
      const pos: Record<string, string | number> = { run: runId, consumer, entries: acks.handed };
      if (text !== undefined) pos.held = text;
      return pos;
    },
    metrics() {
      return {
        records,
        deadLettered: intake.deadLettered,
        held: acks.held.size,
        acked: acks.acked,
        ackErrors: acks.errors,
        claimed: reads?.claimed ?? 0,
        coveredSkipped: intake.coveredSkipped,
        deletedPending: intake.deletedPending,
        barriers: acks.barriers,
      };
    },
    async close() {
      try {
        // Reached after every stage ended; with the run not aborted, the sinks finished. Under
        // checkpoints a draining stop keeps its checkpoints, which a restart resumes from.
        const clean =
          ctx !== undefined && !ctx.signal.aborted && !(ctx.checkpointing && ctx.stopSignal.aborted);
        if (clean && acks.held.size > 0) {
          const local = new AbortController();
          await Promise.race([
            acks.through(acks.handed),
            ctx.clock.sleep(ACK_TIMEOUT_MS, local.signal).then(
              () =>
                ctx.log.warn(
                  `Acknowledging the last ${acks.held.size} entries of ${names} timed out; they stay pending and are read again by consumer \`${consumer}\` (or claimed by another)`,
                  { stage: ctx.name },
                ),
              () => {},
            ),
          ]);
          local.abort();
        }
      } finally {
        reader?.disconnect();
        cmd?.disconnect();
        reader = undefined;
        cmd = undefined;
      }
    },
  };
}
