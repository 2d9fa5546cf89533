/**
 * The three reads of the `redis` source, each with its cursor, in the order the read loop asks
 * for them: (1) this consumer's own pending entries (`XREADGROUP … 0`: read before a crash, a
 * stop or a lost reply, never acknowledged), (2) entries other consumers left pending longer than
 * `claimIdle` (`XAUTOCLAIM`: a dead consumer's work), (3) new entries (`XREADGROUP … >`, blocking;
 * after a full batch the next read is sent ahead while the batch is emitted). Each method adds
 * what it read to a batch through the intake and returns how many entries it took, or
 * `undefined` when its command failed because the run is stopping (the loop ends).
 */
import type { Redis } from 'ioredis';
import { type GroupScope, groupError } from './group.ts';
import type { EntryIntake, RawEntry, Taken } from './intake.ts';

/** Settings of {@link GroupReads}. */
export interface ReadSettings {
  readonly batchSize: number;
  /** Longest a read of new entries blocks, ms. */
  readonly block: number;
  /** Claim entries idle this long (ms); undefined: never. */
  readonly claimIdle?: number | undefined;
}

/** Parses an XREADGROUP reply into `[stream, entries]` pairs. */
function streamsOf(reply: unknown): [string, RawEntry[]][] {
  if (reply === null || reply === undefined) return [];
  return reply as [string, RawEntry[]][];
}

/** See the module comment. Used by one read loop. */
export class GroupReads {
  /** Entries taken over from other consumers. */
  claimed = 0;
  /** How often a claim pass starts, ms (Infinity without `claimIdle`). */
  readonly claimEvery: number;
  /** Streams whose own pending entries are still being re-read, with the id to read after. */
  readonly #pending: Map<string, string>;
  /** XAUTOCLAIM cursors of the current claim pass; empty between passes. */
  readonly #claim = new Map<string, string>();
  #lastClaimAt = -Infinity;
  #rescan = false;
  /** A read of new entries issued ahead while the previous full batch is emitted. */
  #prefetch: Promise<unknown> | undefined;
  readonly #scope: GroupScope;
  readonly #intake: EntryIntake;
  readonly #settings: ReadSettings;
  readonly #reader: Redis;
  readonly #cmd: Redis;

  /** `reader`: the blocking connection; `cmd`: the other one (claims). */
  constructor(scope: GroupScope, intake: EntryIntake, settings: ReadSettings, reader: Redis, cmd: Redis) {
    this.#scope = scope;
    this.#intake = intake;
    this.#settings = settings;
    this.#reader = reader;
    this.#cmd = cmd;
    this.#pending = new Map(scope.streams.map((s) => [s, '0-0']));
    this.claimEvery = settings.claimIdle === undefined ? Infinity : Math.max(100, settings.claimIdle / 4);
  }

  /** True while this consumer's own pending entries are being re-read. */
  get rereading(): boolean {
    return this.#pending.size > 0;
  }

  /** True when no re-read and no claim pass is under way. */
  get settled(): boolean {
    return this.#pending.size === 0 && this.#claim.size === 0;
  }

  /** True when a read ahead is in flight. */
  get readingAhead(): boolean {
    return this.#prefetch !== undefined;
  }

  /**
   * After a reconnect: the pending entries are re-read from the start (a lost reply left its
   * entries pending), from the next {@link startRound} on.
   */
  rescan(): void {
    this.#rescan = true;
  }

  /** Called by the loop before each round of reads: applies a {@link rescan} asked for meanwhile. */
  startRound(): void {
    if (!this.#rescan) return;
    this.#rescan = false;
    for (const s of this.#scope.streams) this.#pending.set(s, '0-0');
  }

  /** True when a claim pass is under way or due at `now`. */
  claimDue(now: number): boolean {
    return (
      this.#settings.claimIdle !== undefined &&
      (this.#claim.size > 0 || now - this.#lastClaimAt >= this.claimEvery)
    );
  }

  /** (1) The next batch of this consumer's own pending entries. */
  async rereadPending(batch: Taken, stopping: AbortSignal): Promise<number | undefined> {
    const { group, consumer, names } = this.#scope;
    const list = [...this.#pending];
    let reply: unknown;
    try {
      reply = await this.#reader.xreadgroup(
        'GROUP',
        group,
        consumer,
        'COUNT',
        this.#settings.batchSize,
        'STREAMS',
        ...list.map(([s]) => s),
        ...list.map(([, id]) => id),
      );
    } catch (err) {
      if (stopping.aborted) return undefined;
      throw groupError(this.#scope, `re-reading the pending entries of ${names}`, err);
    }
    let got = 0;
    const seen = new Set<string>();
    for (const [stream, entries] of streamsOf(reply)) {
      seen.add(stream);
      if (entries.length === 0) this.#pending.delete(stream);
      else {
        this.#pending.set(stream, (entries[entries.length - 1] as RawEntry)[0]);
        got += this.#intake.take(stream, entries, batch, true);
      }
    }
    for (const [s] of list) if (!seen.has(s)) this.#pending.delete(s);
    if (this.#pending.size === 0) this.#intake.coveredDone();
    return got;
  }

  /** (2) One step of the claim pass (starting one at `now`): entries idle longer than `claimIdle`. */
  async claim(batch: Taken, now: number, stopping: AbortSignal): Promise<number> {
    const { group, consumer } = this.#scope;
    if (this.#claim.size === 0) for (const s of this.#scope.streams) this.#claim.set(s, '0-0');
    this.#lastClaimAt = now;
    let got = 0;
    for (const [stream, cursor] of [...this.#claim]) {
      let reply: unknown;
      try {
        reply = await this.#cmd.xautoclaim(
          stream,
          group,
          consumer,
          this.#settings.claimIdle as number,
          cursor,
          'COUNT',
          this.#settings.batchSize,
        );
      } catch (err) {
        if (stopping.aborted) break;
        throw groupError(this.#scope, `claiming idle entries of stream \`${stream}\``, err);
      }
      const [next, entries, deleted] = reply as [string, RawEntry[], string[] | undefined];
      if (next === '0-0') this.#claim.delete(stream);
      else this.#claim.set(stream, next);
      if (deleted !== undefined && deleted.length > 0) {
        this.#intake.deletedPending += deleted.length;
        const ctx = this.#scope.ctx();
        ctx.log.warn(
          `${deleted.length} entries pending in group \`${group}\` of stream \`${stream}\` were deleted before anyone processed them (XDEL or trimming); Redis dropped them from the pending list`,
          { stage: ctx.name, stream },
        );
      }
      const n = this.#intake.take(stream, entries, batch, true);
      this.claimed += n;
      got += n;
    }
    return got;
  }

  /**
   * (3) New entries: the read sent ahead, or one blocking up to `blockMs`. After a full batch the
   * next read is sent ahead (unless stopping).
   */
  async readNew(batch: Taken, blockMs: number, stopping: AbortSignal): Promise<number | undefined> {
    const ahead = this.#prefetch;
    this.#prefetch = undefined;
    let reply: unknown;
    try {
      reply = await (ahead ?? this.#send(blockMs));
    } catch (err) {
      if (stopping.aborted) return undefined;
      throw groupError(this.#scope, `reading ${this.#scope.names}`, err);
    }
    let fresh = 0;
    for (const [stream, entries] of streamsOf(reply))
      fresh += this.#intake.take(stream, entries, batch, false);
    // A full batch: the stream is busy, so read the next one while this one is emitted.
    if (fresh >= this.#settings.batchSize && !stopping.aborted)
      this.#prefetch = this.#send(Math.min(this.#settings.block, this.claimEvery));
    return fresh;
  }

  /** A draining stop: what the read ahead delivered (if any) is added to `batch`, not left pending. */
  async drainAhead(batch: Taken): Promise<void> {
    const ahead = this.#prefetch;
    if (ahead === undefined) return;
    this.#prefetch = undefined;
    const reply = await ahead.catch(() => null);
    for (const [stream, entries] of streamsOf(reply)) this.#intake.take(stream, entries, batch, false);
  }

  #send(blockMs: number): Promise<unknown> {
    const { group, consumer, streams } = this.#scope;
    const p = this.#reader.xreadgroup(
      'GROUP',
      group,
      consumer,
      'COUNT',
      this.#settings.batchSize,
      'BLOCK',
      Math.max(1, Math.floor(blockMs)),
      'STREAMS',
      ...streams,
      ...streams.map(() => '>'),
    );
    p.catch(() => {}); // awaited by the next readNew; a cancelled run abandons it
    return p;
  }
}
