/**
 * When the `redis` source acknowledges (`XACK`): never before the sinks have what an entry
 * became. Each entry handed on (emitted or dead-lettered) is held in order (`held.ts`); with
 * checkpoints, `commit` acknowledges the entries a stored checkpoint counted; without, the
 * source's own barriers mark points that `onBarrierComplete` acknowledges through. A failed XACK
 * keeps the entries held for the next call. While held, entries have their idle time refreshed
 * (`XCLAIM … JUSTID`) so no other consumer's `XAUTOCLAIM` takes them.
 */

import type { Redis } from 'ioredis';
import { BarrierPoints } from '../../core/barrier-points.ts';
import { errorMessage } from '../../core/errors.ts';
import { CHUNK, type GroupScope } from './group.ts';
import { HeldEntries } from './held.ts';

/** The held entries and their acknowledgement; see the module comment. */
export class Acknowledgements {
  /** Entries handed on and not acknowledged, in order; the first has number {@link acked}. */
  readonly held: HeldEntries;
  /** Entries acknowledged so far. */
  acked = 0;
  /** Entries of this run handed on so far (emitted or dead-lettered): `position().entries`. */
  handed = 0;
  /** XACKs that failed (their entries stayed held). */
  errors = 0;
  /** The point each barrier in flight covers (without checkpoints). */
  readonly #points = new BarrierPoints();
  #chain: Promise<void> = Promise.resolve();
  readonly #scope: GroupScope;
  readonly #client: () => Redis | undefined;

  /** `client`: the command connection (undefined when closed: nothing is acknowledged). */
  constructor(scope: GroupScope, client: () => Redis | undefined) {
    this.#scope = scope;
    this.#client = client;
    this.held = new HeldEntries(scope.streams);
  }

  /** Holds an entry handed on (the caller knows it is not held yet). */
  hold(stream: string, id: string): void {
    this.held.push(stream, id);
    this.handed++;
  }

  /** Called at each emit: a barrier emitted next covers everything handed on so far. */
  emitted(): void {
    this.#points.emitted(this.handed);
  }

  /** Barriers emitted (without checkpoints). */
  get barriers(): number {
    return this.#points.barriers;
  }

  /** Without checkpoints: the id of a new barrier, acknowledging what was emitted before it once complete. */
  nextBarrier(): number {
    return this.#points.next();
  }

  /** Barrier `id` reached every sink: acknowledges what preceded it (earlier points are dropped). */
  async barrierComplete(id: number): Promise<void> {
    const upTo = this.#points.complete(id);
    if (upTo !== undefined) await this.through(upTo);
  }

  /**
   * Acknowledges the first `upTo - acked` held entries, after every earlier call. A failure is
   * logged and keeps them held for the next call; it never rejects.
   */
  through(upTo: number): Promise<void> {
    this.#chain = this.#chain.then(async () => {
      const n = Math.min(upTo - this.acked, this.held.size);
      const cmd = this.#client();
      if (n <= 0 || cmd === undefined) return;
      const { group, names } = this.#scope;
      try {
        const p = cmd.pipeline();
        for (const [stream, ids] of this.held.firstByStream(n))
          for (let i = 0; i < ids.length; i += CHUNK) p.xack(stream, group, ...ids.slice(i, i + CHUNK));
        const replies = (await p.exec()) ?? [];
        for (const [err] of replies) if (err) throw err;
      } catch (err) {
        // Not fatal: the entries stay pending and held; the next acknowledgement covers them.
        this.errors++;
        const ctx = this.#scope.ctx();
        ctx.log.warn(
          `Acknowledging ${n} entries of ${names} for group \`${group}\` failed: ${errorMessage(err)}; they are acknowledged with the next checkpoint or barrier, or read again after a restart`,
          { stage: ctx.name },
        );
        return;
      }
      this.held.drop(n);
      this.acked += n;
    });
    return this.#chain;
  }

  /**
   * Every `every` ms until `signal` aborts, refreshes the idle time of the held entries so that
   * no other consumer's `XAUTOCLAIM` takes them; a failure is logged. Resolves once aborted.
   */
  async keepAlive(every: number, signal: AbortSignal): Promise<void> {
    const ctx = this.#scope.ctx();
    const { group, consumer, names } = this.#scope;
    for (;;) {
      try {
        await ctx.clock.sleep(every, signal);
      } catch {
        return;
      }
      const c = this.#client();
      if (c === undefined || this.held.size === 0) continue;
      try {
        const p = c.pipeline();
        for (const [stream, ids] of this.held.firstByStream(this.held.size))
          for (let i = 0; i < ids.length; i += CHUNK)
            p.xclaim(stream, group, consumer, 0, ...ids.slice(i, i + CHUNK), 'JUSTID');
        await p.exec();
      } catch (err) {
        if (signal.aborted) return;
        ctx.log.warn(
          `Refreshing the idle time of ${this.held.size} held entries of ${names} failed: ${errorMessage(err)}; another consumer may take them over after \`claimIdle\``,
          { stage: ctx.name },
        );
      }
    }
  }
}
