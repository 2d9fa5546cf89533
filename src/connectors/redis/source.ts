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
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { connectRedis, startConnecting } from '../../clients/redis.ts';
import { cancelledError, ErrorCode, errorMessage, SluiceError, wrapError } from '../../core/errors.ts';
import { barrier, type Position, type RecordMeta } from '../../core/message.ts';
import type { Emitter, Source, SourceContext } from '../../core/stage.ts';
import { redactUrl } from '../../core/url.ts';
import { decodeEntry, type RedisFormat } from './entry.ts';
import { HeldEntries, MAX_LISTED, parseHeldText } from './held.ts';

/** Config of {@link redisSource} (the parsed YAML config). */
export interface RedisSourceOptions {
  /** `redis://[user:password@]host:port[/db]`. */
  url: string;
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

/** An entry as Redis returns it; `fields` is null when the entry was deleted while pending. */
type RawEntry = [id: string, fields: string[] | null];

/** How long the acknowledgement at the end of a run may take before it is given up. */
const ACK_TIMEOUT_MS = 10_000;
/** Ids per XACK / XCLAIM command. */
const CHUNK = 1000;
/** Acknowledgement points kept for barriers not yet reported; older ones are dropped. */
const MAX_PENDING_BARRIERS = 64;

/** The epoch milliseconds of an entry id (`1700000000000-3`). */
function idTime(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/** True when `err` is a reply of the server (a command error), not a connection problem. */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

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
  const { streams, group, consumer, batchSize, format, field } = options;
  if (streams.length === 0)
    throw new SluiceError(ErrorCode.CONFIG, 'the redis source needs at least one stream');
  const where = redactUrl(options.url);
  const names = streams.map((s) => `\`${s}\``).join(', ');
  const runId = randomUUID();
  let ctx: SourceContext;
  /** Blocking reads only (a blocked connection can serve nothing else). */
  let reader: Redis | undefined;
  /** Everything else: group creation, acknowledgements, claims. */
  let cmd: Redis | undefined;
  /** Entries handed on and not acknowledged, in order; the first has number `ackedCount`. */
  const held = new HeldEntries(streams);
  let ackedCount = 0;
  /** Entries of this run handed on so far (emitted or dead-lettered): `position().entries`. */
  let handed = 0;
  /**
   * `handed` at the last emit. The runtime sends a source's dead letters with its next emit, not
   * with a signal, so a barrier covers only what was handed on before the last emit.
   */
  let emittedThrough = 0;
  /** Entry count to acknowledge at barrier `id` (without checkpoints). */
  const pendingBarriers = new Map<number, number>();
  let barrierId = 0;
  let ackChain: Promise<void> = Promise.resolve();
  /** The consumer whose pending entries a restored checkpoint covers, when not this one. */
  let adoptFrom: string | undefined;
  /**
   * Entries the restored checkpoint covers (handed on before its barrier) that may still be
   * pending: the first re-read holds them again, to acknowledge with the next commit, instead of
   * emitting them twice. Undefined once that re-read is done.
   */
  let covered: Map<string, Set<string>> | undefined;
  /** The restored checkpoint held too many entries to list them (then they are read again). */
  let coveredUnlisted = false;
  let coveredSkipped = 0;
  let records = 0;
  let deadLettered = 0;
  let claimed = 0;
  let ackErrors = 0;
  let deletedPending = 0;

  function fail(doing: string, err: unknown): SluiceError {
    if (ctx?.signal.aborted) return cancelledError(ctx.signal.reason);
    return wrapError(`${doing} (Redis \`${where}\`, group \`${group}\`, consumer \`${consumer}\`)`, err, {
      stage: ctx?.name,
      component: 'redis',
      streams,
      group,
      consumer,
    });
  }

  /** Acknowledges the first `upTo - ackedCount` held entries. A failure keeps them for the next call. */
  function ackThrough(upTo: number): Promise<void> {
    ackChain = ackChain.then(async () => {
      const n = Math.min(upTo - ackedCount, held.size);
      if (n <= 0 || cmd === undefined) return;
      const byStream = held.firstByStream(n);
      try {
        const p = cmd.pipeline();
        for (const [stream, ids] of byStream)
          for (let i = 0; i < ids.length; i += CHUNK) p.xack(stream, group, ...ids.slice(i, i + CHUNK));
        const replies = (await p.exec()) ?? [];
        for (const [err] of replies) if (err) throw err;
      } catch (err) {
        // Not fatal: the entries stay pending and held; the next acknowledgement covers them.
        ackErrors++;
        ctx.log.warn(
          `Acknowledging ${n} entries of ${names} for group \`${group}\` failed: ${errorMessage(err)}; they are acknowledged with the next checkpoint or barrier, or read again after a restart`,
          { stage: ctx.name },
        );
        return;
      }
      held.drop(n);
      ackedCount += n;
    });
    return ackChain;
  }

  /** Creates the group on every stream (and the stream itself) unless it exists. */
  async function ensureGroups(c: Redis): Promise<void> {
    for (const stream of streams) {
      try {
        await c.xgroup('CREATE', stream, group, options.start, 'MKSTREAM');
      } catch (err) {
        if (isReplyError(err) && errorMessage(err).startsWith('BUSYGROUP')) continue;
        throw fail(`creating consumer group \`${group}\` on stream \`${stream}\``, err);
      }
    }
  }

  /** Moves the pending entries of consumer `from` (a previous run's name) to this consumer. */
  async function adopt(c: Redis, from: string): Promise<void> {
    let moved = 0;
    for (const stream of streams) {
      let start = '-';
      for (;;) {
        const rows = (await c.xpending(stream, group, start, '+', CHUNK, from)) as [
          string,
          string,
          number,
          number,
        ][];
        if (rows.length === 0) break;
        const ids = rows.map((r) => r[0]);
        await c.xclaim(stream, group, consumer, 0, ...ids, 'JUSTID');
        moved += ids.length;
        start = `(${ids[ids.length - 1]}`;
        if (rows.length < CHUNK) break;
      }
    }
    if (moved > 0)
      ctx.log.info(
        `Took over ${moved} pending entries of consumer \`${from}\` (the checkpoint being restored was taken under that name)`,
        { stage: ctx.name },
      );
  }

  /** Keeps the idle time of held entries low so that no other consumer's `XAUTOCLAIM` takes them. */
  async function keepAlive(every: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      try {
        await ctx.clock.sleep(every, signal);
      } catch {
        return;
      }
      const c = cmd;
      if (c === undefined || held.size === 0) continue;
      const byStream = held.firstByStream(held.size);
      try {
        const p = c.pipeline();
        for (const [stream, ids] of byStream)
          for (let i = 0; i < ids.length; i += CHUNK)
            p.xclaim(stream, group, consumer, 0, ...ids.slice(i, i + CHUNK), 'JUSTID');
        await p.exec();
      } catch (err) {
        if (signal.aborted) return;
        ctx.log.warn(
          `Refreshing the idle time of ${held.size} held entries of ${names} failed: ${errorMessage(err)}; another consumer may take them over after \`claimIdle\``,
          { stage: ctx.name },
        );
      }
    }
  }

  /**
   * Turns entries into records and meta, holding each until it is acknowledged. With `mayBeHeld`
   * (a pending re-read or a claim), an entry already held is skipped; an undecodable or deleted
   * one is dead-lettered.
   */
  function take(
    stream: string,
    entries: readonly RawEntry[],
    out: { records: unknown[]; meta: RecordMeta[] },
    mayBeHeld: boolean,
  ): number {
    let n = 0;
    const cov = covered?.get(stream);
    for (const [id, fields] of entries) {
      // New entries (`>`) were never delivered before; re-read and claimed ones may be ours already.
      if (mayBeHeld && held.has(stream, id)) continue;
      held.push(stream, id);
      handed++;
      n++;
      if (cov?.delete(id) === true) {
        // Its effect is in the restored checkpoint: hold it for the next commit, do not emit it again.
        coveredSkipped++;
        continue;
      }
      const meta: RecordMeta = { source: ctx.name, position: { stream, id }, timestamp: idTime(id) };
      if (fields === null) {
        deletedPending++;
        deadLettered++;
        ctx.deadLetter(
          { stream, id, fields: null },
          new SluiceError(
            ErrorCode.PARSE,
            `entry \`${id}\` of stream \`${stream}\` was deleted (XDEL or trimming) while pending in group \`${group}\`; its data is gone`,
            { stream, id, group },
          ),
          meta,
        );
        continue;
      }
      let value: unknown;
      try {
        value = decodeEntry(fields, field, format);
      } catch (err) {
        deadLettered++;
        ctx.deadLetter(
          // The raw decoding of the whole entry (plain strings) cannot fail.
          { stream, id, fields: decodeEntry(fields, undefined, 'raw') },
          new SluiceError(
            ErrorCode.PARSE,
            `cannot decode entry \`${id}\` of stream \`${stream}\`${field !== undefined ? ` (field \`${field}\`, format \`${format}\`)` : ` (format \`${format}\`)`}: ${errorMessage(err)}; the entry went to the dlq with its fields`,
            { stream, id, field },
          ),
          meta,
        );
        continue;
      }
      out.records.push(value);
      out.meta.push(meta);
    }
    return n;
  }

  /** Parses an XREADGROUP reply into `[stream, entries]` pairs. */
  function streamsOf(reply: unknown): [string, RawEntry[]][] {
    if (reply === null || reply === undefined) return [];
    return reply as [string, RawEntry[]][];
  }

  /** Emits what {@link take} collected, if anything; a barrier then covers everything handed on. */
  async function emitTaken(
    out: Emitter<unknown>,
    batch: { records: unknown[]; meta: RecordMeta[] },
  ): Promise<void> {
    if (batch.records.length === 0) return;
    records += batch.records.length;
    emittedThrough = handed;
    await out.emit({ kind: 'batch', records: batch.records, meta: batch.meta });
  }

  async function emitBarrier(out: Emitter<unknown>): Promise<void> {
    barrierId++;
    pendingBarriers.set(barrierId, emittedThrough);
    if (pendingBarriers.size > MAX_PENDING_BARRIERS) {
      const oldest = pendingBarriers.keys().next().value as number;
      pendingBarriers.delete(oldest);
    }
    await out.signal(barrier(barrierId));
  }

  return {
    get acked() {
      return ackedCount;
    },
    open(c) {
      ctx = c;
    },
    restore(position: Position) {
      const from = position.consumer;
      if (typeof from === 'string' && from !== consumer) adoptFrom = from;
      if (typeof position.held === 'string') covered = parseHeldText(position.held, streams);
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
        const setup = (async () => {
          await Promise.all([startConnecting(c0), startConnecting(r0)]);
          await ensureGroups(c0);
          if (adoptFrom !== undefined) {
            try {
              await adopt(c0, adoptFrom);
            } catch (err) {
              throw fail(`taking over the pending entries of consumer \`${adoptFrom}\``, err);
            }
          }
          return true;
        })();
        // A stop while Redis is still out of reach ends the run (nothing was read); the setup's
        // queued commands are abandoned when `close` disconnects.
        setup.catch(() => {});
        const stopped = new Promise<false>((resolve) => {
          if (stopOrCancel.aborted) resolve(false);
          else stopOrCancel.addEventListener('abort', () => resolve(false), { once: true });
        });
        if (!(await Promise.race([setup, stopped]))) {
          if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
          return;
        }
        // After a reconnect, re-read this consumer's pending entries: a read whose reply was lost
        // with the connection left its entries pending here, and only a re-read finds them.
        if (coveredUnlisted)
          ctx.log.warn(
            `The restored checkpoint held more than ${MAX_LISTED} unacknowledged entries of ${names}, too many to list; those it covers and that are still pending are emitted again (duplicates)`,
            { stage: ctx.name },
          );
        let rescan = false;
        const learnId = (): void => {
          r0.client('ID').then(
            (id) => {
              readerId = id;
            },
            () => {},
          );
        };
        r0.on('ready', () => {
          rescan = true;
          learnId();
        });
        learnId();
        if (options.claimIdle !== undefined)
          keeper = keepAlive(
            Math.max(50, Math.floor(options.claimIdle / 3)),
            AbortSignal.any([local.signal, ctx.signal]),
          );

        /** A read of new entries issued ahead while the previous full batch is emitted. */
        let prefetch: Promise<unknown> | undefined;
        const readNew = (blockMs: number): Promise<unknown> => {
          const p = r0.xreadgroup(
            'GROUP',
            group,
            consumer,
            'COUNT',
            batchSize,
            'BLOCK',
            Math.max(1, Math.floor(blockMs)),
            'STREAMS',
            ...streams,
            ...streams.map(() => '>'),
          );
          p.catch(() => {}); // awaited below; a cancelled run abandons it
          return p;
        };
        let lastBarrierAt = ctx.clock.now();
        let lastDataAt = ctx.clock.now();
        let progressed = false;
        /** Streams whose own pending entries are still being re-read, with the id to read after. */
        const pendingCursor = new Map<string, string>(streams.map((s) => [s, '0-0']));
        /** XAUTOCLAIM cursors of the current claim pass; empty between passes. */
        const claimCursor = new Map<string, string>();
        let lastClaimAt = -Infinity;
        const claiming = options.claimIdle !== undefined;
        const claimEvery = claiming ? Math.max(100, (options.claimIdle as number) / 4) : Infinity;

        while (!stopOrCancel.aborted) {
          if (rescan) {
            rescan = false;
            for (const st of streams) pendingCursor.set(st, '0-0');
          }
          const batch: { records: unknown[]; meta: RecordMeta[] } = { records: [], meta: [] };
          let got = 0;
          const now = ctx.clock.now();
          if (pendingCursor.size > 0) {
            // 1. This consumer's own pending entries (read before a crash or a stop, never acknowledged).
            const list = [...pendingCursor];
            let reply: unknown;
            try {
              reply = await reader.xreadgroup(
                'GROUP',
                group,
                consumer,
                'COUNT',
                batchSize,
                'STREAMS',
                ...list.map(([s]) => s),
                ...list.map(([, id]) => id),
              );
            } catch (err) {
              if (stopOrCancel.aborted) break;
              throw fail(`re-reading the pending entries of ${names}`, err);
            }
            const seen = new Set<string>();
            for (const [stream, entries] of streamsOf(reply)) {
              seen.add(stream);
              if (entries.length === 0) pendingCursor.delete(stream);
              else {
                pendingCursor.set(stream, (entries[entries.length - 1] as RawEntry)[0]);
                got += take(stream, entries, batch, true);
              }
            }
            for (const [s] of list) if (!seen.has(s)) pendingCursor.delete(s);
            if (pendingCursor.size === 0 && covered !== undefined) {
              // The first re-read is over: what the checkpoint covered and is still listed was acknowledged before.
              covered = undefined;
              if (coveredSkipped > 0)
                ctx.log.info(
                  `Holding ${coveredSkipped} pending entries of ${names} that the restored checkpoint covers; they are acknowledged with the next checkpoint, not emitted again`,
                  { stage: ctx.name },
                );
            }
          } else if (claiming && (claimCursor.size > 0 || now - lastClaimAt >= claimEvery)) {
            // 2. Entries other consumers left pending longer than `claimIdle` (they died).
            if (claimCursor.size === 0) for (const s of streams) claimCursor.set(s, '0-0');
            lastClaimAt = now;
            for (const [stream, cursor] of [...claimCursor]) {
              let reply: unknown;
              try {
                reply = await cmd.xautoclaim(
                  stream,
                  group,
                  consumer,
                  options.claimIdle as number,
                  cursor,
                  'COUNT',
                  batchSize,
                );
              } catch (err) {
                if (stopOrCancel.aborted) break;
                throw fail(`claiming idle entries of stream \`${stream}\``, err);
              }
              const [next, entries, deleted] = reply as [string, RawEntry[], string[] | undefined];
              if (next === '0-0') claimCursor.delete(stream);
              else claimCursor.set(stream, next);
              if (deleted !== undefined && deleted.length > 0) {
                deletedPending += deleted.length;
                ctx.log.warn(
                  `${deleted.length} entries pending in group \`${group}\` of stream \`${stream}\` were deleted before anyone processed them (XDEL or trimming); Redis dropped them from the pending list`,
                  { stage: ctx.name, stream },
                );
              }
              const n = take(stream, entries, batch, true);
              claimed += n;
              got += n;
            }
          }
          if (prefetch !== undefined || (got === 0 && pendingCursor.size === 0)) {
            // 3. New entries (read ahead while the last full batch was emitted, or now).
            const idleLeft =
              options.idleTimeout === undefined
                ? Infinity
                : options.idleTimeout - (ctx.clock.now() - lastDataAt);
            const ahead = prefetch;
            prefetch = undefined;
            let reply: unknown;
            try {
              reply = await (ahead ?? readNew(Math.min(options.block, idleLeft, claimEvery)));
            } catch (err) {
              if (stopOrCancel.aborted) break;
              throw fail(`reading ${names}`, err);
            }
            let fresh = 0;
            for (const [stream, entries] of streamsOf(reply)) fresh += take(stream, entries, batch, false);
            got += fresh;
            // A full batch: the stream is busy, so read the next one while this one is emitted.
            if (fresh >= batchSize && !stopOrCancel.aborted)
              prefetch = readNew(Math.min(options.block, claimEvery));
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
            await emitBarrier(out);
          }
          if (
            got === 0 &&
            options.idleTimeout !== undefined &&
            pendingCursor.size === 0 &&
            claimCursor.size === 0 &&
            after - lastDataAt >= options.idleTimeout
          )
            break;
        }
        if (prefetch !== undefined && !ctx.signal.aborted) {
          // A draining stop: what the read ahead delivered is emitted, not left pending.
          const batch: { records: unknown[]; meta: RecordMeta[] } = { records: [], meta: [] };
          const reply = await prefetch.catch(() => null);
          prefetch = undefined;
          for (const [stream, entries] of streamsOf(reply)) take(stream, entries, batch, false);
          await emitTaken(out, batch);
        }
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
      let upTo: number | undefined;
      for (const k of [...pendingBarriers.keys()]) {
        if (k > id) break;
        if (k === id) upTo = pendingBarriers.get(k);
        pendingBarriers.delete(k);
      }
      if (upTo !== undefined) await ackThrough(upTo);
    },
    async commit(position: Position) {
      // A position of another run (one restored from) covers nothing this run holds.
      if (position.run !== runId || typeof position.entries !== 'number') return;
      await ackThrough(position.entries);
    },
    position() {
      const text = held.text();
      // `held`: what this checkpoint covers and is not acknowledged yet (see `restore`).
      const pos: Record<string, string | number> = { run: runId, consumer, entries: handed };
      if (text !== undefined) pos.held = text;
      return pos;
    },
    metrics() {
      return {
        records,
        deadLettered,
        held: held.size,
        acked: ackedCount,
        ackErrors,
        claimed,
        coveredSkipped,
        deletedPending,
        barriers: barrierId,
      };
    },
    async close() {
      try {
        // Reached after every stage ended; with the run not aborted, the sinks finished. Under
        // checkpoints a draining stop keeps its checkpoints, which a restart resumes from.
        const clean =
          ctx !== undefined && !ctx.signal.aborted && !(ctx.checkpointing && ctx.stopSignal.aborted);
        if (clean && held.size > 0) {
          const local = new AbortController();
          await Promise.race([
            ackThrough(handed),
            ctx.clock.sleep(ACK_TIMEOUT_MS, local.signal).then(
              () =>
                ctx.log.warn(
                  `Acknowledging the last ${held.size} entries of ${names} timed out; they stay pending and are read again by consumer \`${consumer}\` (or claimed by another)`,
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
