/**
 * One consumer on Pulsar's WebSocket API in pull mode (`pullMode=true`): the broker's proxy sends
 * a message only against a permit, so the messages in flight to this process (delivered, not yet
 * taken by the source) never exceed `receiverQueueSize` — the backpressure bound. Permits are
 * granted again as the source takes messages, never as it acknowledges them: a message held for
 * a checkpoint does not stop the flow (the broker's own `maxUnackedMessagesPerConsumer`, 50,000
 * by default, bounds those).
 *
 * Acks (`{messageId}`) and negative acks (`{type: negativeAcknowledge, messageId}`) are frames the
 * proxy forwards to the broker without an answer: a frame lost with its socket means the message
 * is delivered again (at-least-once). When the socket closes, the broker redelivers what this
 * consumer had not acknowledged, to it or to another consumer of the subscription.
 */
import { offAbort, onAbort } from '../../core/abort-waiters.ts';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import { type Delivered, parseDelivered } from './message.ts';

/** See the module comment. */
export class ConsumerSocket {
  /** Messages delivered and not taken yet, in arrival order. */
  readonly #queue: Delivered[] = [];
  #head = 0;
  /** Permits granted and not used by a delivery yet. */
  #outstanding = 0;
  readonly #ws: WebSocket;
  readonly #queueSize: number;
  #wake: (() => void) | undefined;
  /** Why the socket closed, once it did. */
  closed: { code: number; reason: string } | undefined;
  /** Frames that were not messages, or not JSON (counted, ignored). */
  oddFrames = 0;

  /** `ws`: an open consumer socket opened with `pullMode=true`; grants the first `queueSize` permits. */
  constructor(ws: WebSocket, queueSize: number) {
    this.#ws = ws;
    this.#queueSize = queueSize;
    ws.addEventListener('message', (ev) => {
      const data =
        typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data as ArrayBuffer).toString('utf8');
      let m: Delivered | undefined;
      try {
        m = parseDelivered(data);
      } catch {
        m = undefined;
      }
      if (m === undefined) {
        this.oddFrames++;
        return;
      }
      this.#outstanding--;
      this.#queue.push(m);
      this.#notify();
    });
    ws.addEventListener('close', (ev) => {
      this.closed = { code: ev.code, reason: ev.reason };
      this.#notify();
    });
    this.#permit(queueSize);
  }

  /** Messages waiting to be taken. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** True while the socket can send acks. */
  get open(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #permit(n: number): void {
    if (n <= 0 || !this.open) return;
    this.#outstanding += n;
    this.#ws.send(JSON.stringify({ type: 'permit', permitMessages: n }));
  }

  /**
   * Resolves once a message is queued, the socket closed, `ms` passed or `signal` aborted
   * (never rejects). Resolves at once when a message is already queued.
   */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.queued > 0 || this.closed !== undefined || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        offAbort(wait);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      // One listener per signal, not per wait (core/abort-waiters.ts says why).
      const wait = onAbort(signal, done);
      this.#wake = done;
    });
  }

  /** Takes up to `max` queued messages and grants permits for what was taken. */
  take(max: number): Delivered[] {
    const n = Math.min(max, this.queued);
    const out = this.#queue.slice(this.#head, this.#head + n);
    this.#head += n;
    if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    // Top up once half the window is used: fewer permit frames, the same bound.
    const free = this.#queueSize - this.#outstanding - this.queued;
    if (free * 2 >= this.#queueSize) this.#permit(free);
    return out;
  }

  /** Acknowledges one message (individual ack). False when the socket is closed (it will be redelivered). */
  ack(messageId: string): boolean {
    if (!this.open) return false;
    this.#ws.send(`{"messageId":${JSON.stringify(messageId)}}`);
    return true;
  }

  /** Negative ack: the broker redelivers the message after the consumer's `negativeAckRedeliveryDelay`. */
  nack(messageId: string): boolean {
    if (!this.open) return false;
    this.#ws.send(`{"type":"negativeAcknowledge","messageId":${JSON.stringify(messageId)}}`);
    return true;
  }

  /** Bytes queued in the socket and not sent yet (acks waiting for the network). */
  get buffered(): number {
    return this.#ws.bufferedAmount;
  }

  /** Closes the socket (the broker redelivers what was not acknowledged). */
  close(): void {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING)
      this.#ws.close(1000);
  }

  /** The error for a socket the broker closed under a running source. */
  closedError(what: string): SluiceError {
    const c = this.closed;
    return new SluiceError(
      ErrorCode.STAGE,
      `${what}: the broker closed the consumer socket (${c?.code ?? '?'}${c?.reason ? ` ${c.reason}` : ''})`,
      { component: 'pulsar' },
      { retryable: true },
    );
  }
}
