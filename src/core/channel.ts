/**
 * A bounded queue between two stages, with backpressure and cancellation.
 *
 * The model is a Go channel plus `select` on `ctx.Done()`: `send` waits while the channel is
 * full, and every wait also listens to an `AbortSignal`, so cancelling a run frees a
 * producer blocked on a full channel. Nothing here grows without bound: at most `capacity`
 * items are queued, plus at most one parked item per blocked sender (each blocked sender
 * is one suspended stage, so their number is fixed by the graph).
 */
import { type AbortWait, offAbort, onAbort } from './abort-waiters.ts';
import { cancelledError, ErrorCode, SluiceError } from './errors.ts';

/** What `trySend`/`send` do when the channel is full. */
export type OverflowPolicy = 'block' | 'dropOldest' | 'error';

/** Options of a {@link Channel}. */
export interface ChannelOptions<T> {
  /** Maximum number of queued items (≥ 1). */
  capacity: number;
  /** Name used in errors and metrics. */
  name?: string;
  /** `block` (default) waits for room; `dropOldest` discards the oldest droppable item; `error` throws. */
  overflow?: OverflowPolicy;
  /** Weight of an item for the `queuedWeight` gauge (e.g. records in a batch). Default 1. */
  weigh?: (item: T) => number;
  /**
   * Which items `dropOldest` may discard (default: any). Control signals must never be
   * dropped — a lost barrier would stall checkpoints — so the runtime allows only batches.
   */
  droppable?: (item: T) => boolean;
}

/** Returned by `tryRecv` when nothing is queued but the channel is still open. */
export const EMPTY: unique symbol = Symbol('sluice.channel.empty');
/** Returned by `tryRecv`/`recv` once the channel is closed and fully drained. */
export const CLOSED: unique symbol = Symbol('sluice.channel.closed');

interface ParkedSender<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Bounded multi-producer, single-consumer channel.
 *
 * @example
 * const ch = new Channel<number>({ capacity: 2 });
 * await ch.send(1); await ch.send(2);
 * const third = ch.send(3);       // waits: the channel is full
 * ch.tryRecv();                   // 1 — and `third` is now queued
 * ch.close();
 */
export class Channel<T> {
  readonly name: string;
  readonly capacity: number;
  readonly overflow: OverflowPolicy;
  private readonly weigh: ((item: T) => number) | undefined;
  private readonly droppable: ((item: T) => boolean) | undefined;
  private readonly queue: (T | undefined)[];
  private head = 0;
  private count = 0;
  private parked: ParkedSender<T>[] = [];
  private readers: (() => void)[] = [];
  private isClosed = false;
  private failure: unknown = undefined;
  private blockedSince = 0;

  /** Items accepted by the channel so far. */
  sent = 0;
  /** Items handed to the receiver so far. */
  received = 0;
  /** Items discarded by the `dropOldest` policy. */
  dropped = 0;
  /** Sum of `weigh(item)` over the items `dropOldest` discarded (records, for batches). */
  droppedWeight = 0;
  /** Total milliseconds senders spent waiting for room (backpressure). */
  blockedMs = 0;
  /** Sum of `weigh(item)` over queued items (records queued, for batches). */
  queuedWeight = 0;
  /** Highest `queuedWeight` seen. */
  peakQueuedWeight = 0;

  constructor(options: ChannelOptions<T>) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `channel capacity must be a whole number ≥ 1, got ${options.capacity}`,
      );
    }
    this.capacity = options.capacity;
    this.name = options.name ?? 'channel';
    this.overflow = options.overflow ?? 'block';
    this.weigh = options.weigh;
    this.droppable = options.droppable;
    this.queue = new Array(options.capacity);
  }

  /** Number of queued items. */
  get size(): number {
    return this.count;
  }

  /** True once `close` or `cancel` was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Enqueues `item` if there is room (or the policy makes room) and returns true; returns
   * false when the channel is full under policy `block`. Throws when the channel is closed,
   * or full under policy `error`.
   */
  trySend(item: T): boolean {
    this.assertOpen();
    if (this.count < this.capacity && this.parked.length === 0) {
      this.push(item);
      return true;
    }
    if (this.overflow === 'dropOldest' && this.parked.length === 0 && this.dropOldestDroppable()) {
      this.push(item);
      return true;
    }
    if (this.overflow === 'error') {
      throw new SluiceError(
        ErrorCode.OVERFLOW,
        `buffer \`${this.name}\` is full (${this.capacity} items) and its overflow policy is \`error\`; raise its buffer size or choose overflow \`block\` or \`dropOldest\``,
        { stage: this.name },
      );
    }
    return false;
  }

  /**
   * Enqueues `item`, waiting while the channel is full. Rejects when `signal` aborts or the
   * channel is cancelled while waiting (the item is then not delivered), or when the channel
   * is closed.
   */
  send(item: T, signal?: AbortSignal): Promise<void> {
    try {
      if (this.trySend(item)) return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) return Promise.reject(cancelledError(signal.reason));
    return new Promise<void>((resolve, reject) => {
      // Not an `abort` listener per wait, which kept each parked item reachable long after it
      // was delivered: see `abort-waiters.ts`.
      let wait: AbortWait | undefined;
      const entry: ParkedSender<T> = {
        item,
        resolve: () => {
          if (wait) offAbort(wait);
          resolve();
        },
        reject: (err) => {
          if (wait) offAbort(wait);
          reject(err);
        },
      };
      if (signal) {
        wait = onAbort(signal, () => {
          const i = this.parked.indexOf(entry);
          if (i >= 0) this.parked.splice(i, 1);
          if (this.parked.length === 0) this.stopBlockedClock();
          reject(cancelledError(signal.reason));
        });
      }
      if (this.parked.length === 0) this.blockedSince = performance.now();
      this.parked.push(entry);
    });
  }

  /** The next item, {@link EMPTY} when none is queued yet, or {@link CLOSED} when closed and drained. */
  tryRecv(): T | typeof EMPTY | typeof CLOSED {
    if (this.count > 0) {
      const item = this.shift() as T;
      this.received++;
      if (this.weigh) this.queuedWeight -= this.weigh(item);
      this.admitParked();
      return item;
    }
    if (this.failure !== undefined) throw this.failure;
    return this.isClosed ? CLOSED : EMPTY;
  }

  /**
   * Resolves when `tryRecv` would return an item or {@link CLOSED}; rejects when `signal`
   * aborts first or the channel is cancelled.
   */
  readable(signal?: AbortSignal): Promise<void> {
    if (this.count > 0 || this.isClosed) {
      return this.failure !== undefined ? Promise.reject(this.failure) : Promise.resolve();
    }
    if (signal?.aborted) return Promise.reject(cancelledError(signal.reason));
    return new Promise<void>((resolve, reject) => {
      const wake = () => {
        if (wait) offAbort(wait);
        if (this.failure !== undefined) reject(this.failure);
        else resolve();
      };
      const wait =
        signal &&
        onAbort(signal, () => {
          const i = this.readers.indexOf(wake);
          if (i >= 0) this.readers.splice(i, 1);
          reject(cancelledError(signal.reason));
        });
      this.readers.push(wake);
    });
  }

  /** Waits for and returns the next item, or {@link CLOSED} once closed and drained. */
  async recv(signal?: AbortSignal): Promise<T | typeof CLOSED> {
    for (;;) {
      const item = this.tryRecv();
      if (item !== EMPTY) return item;
      await this.readable(signal);
    }
  }

  /**
   * Graceful close: no more sends; the receiver still gets every queued and parked item,
   * then {@link CLOSED}. Idempotent.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.wakeReaders();
  }

  /**
   * Abortive close: drops queued items, rejects parked senders and waiting readers with
   * `reason`. Idempotent.
   */
  cancel(reason: unknown = cancelledError()): void {
    if (this.failure !== undefined) return;
    this.failure = reason;
    this.isClosed = true;
    this.count = 0;
    this.head = 0;
    this.queue.fill(undefined);
    this.queuedWeight = 0;
    const parked = this.parked;
    this.parked = [];
    this.stopBlockedClock();
    for (const p of parked) p.reject(reason);
    this.wakeReaders();
  }

  private assertOpen(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.isClosed) {
      throw new SluiceError(ErrorCode.CHANNEL_CLOSED, `send on closed channel \`${this.name}\``, {
        stage: this.name,
      });
    }
  }

  private push(item: T): void {
    this.queue[(this.head + this.count) % this.capacity] = item;
    this.count++;
    this.sent++;
    if (this.weigh) {
      this.queuedWeight += this.weigh(item);
      if (this.queuedWeight > this.peakQueuedWeight) this.peakQueuedWeight = this.queuedWeight;
    }
    if (this.readers.length > 0) this.wakeReaders();
  }

  /**
   * Removes the oldest queued item that may be dropped, keeping the order of the rest.
   * Returns false when every queued item must be kept (then the sender waits, as with `block`).
   */
  private dropOldestDroppable(): boolean {
    for (let k = 0; k < this.count; k++) {
      const at = (this.head + k) % this.capacity;
      const item = this.queue[at] as T;
      if (this.droppable !== undefined && !this.droppable(item)) continue;
      // Close the gap by moving the items before it one slot towards the tail.
      for (let j = k; j > 0; j--) {
        this.queue[(this.head + j) % this.capacity] = this.queue[(this.head + j - 1) % this.capacity];
      }
      this.queue[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
      if (this.weigh) {
        const weight = this.weigh(item);
        this.queuedWeight -= weight;
        this.droppedWeight += weight;
      }
      this.dropped++;
      return true;
    }
    return false;
  }

  private shift(): T | undefined {
    const item = this.queue[this.head];
    this.queue[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return item;
  }

  private admitParked(): void {
    while (this.count < this.capacity && this.parked.length > 0) {
      const p = this.parked.shift() as ParkedSender<T>;
      this.push(p.item);
      p.resolve();
    }
    if (this.parked.length === 0) this.stopBlockedClock();
  }

  private stopBlockedClock(): void {
    if (this.blockedSince !== 0) {
      this.blockedMs += performance.now() - this.blockedSince;
      this.blockedSince = 0;
    }
  }

  private wakeReaders(): void {
    const readers = this.readers;
    this.readers = [];
    for (const r of readers) r();
  }
}
