/**
 * One producer on Pulsar's WebSocket API. Sends are pipelined: each frame carries a `context`
 * that the broker's receipt names, up to `maxPending` frames wait for their receipts at once, and
 * {@link ProducerSocket.drain} resolves when every frame sent so far has its receipt (the sink's
 * barrier and end wait for that). The frames awaiting a receipt are kept, so when the socket
 * closes under them they are sent again on a new socket (at-least-once: the broker may have
 * stored some already). A receipt that reports an error fails the next call with its message.
 */
import { offAbort, onAbort } from '../../core/abort-waiters.ts';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { Receipt } from './message.ts';

/** Opens a new producer socket (with the connector's retry policy). */
export type OpenProducer = () => Promise<WebSocket>;

/** See the module comment. */
export class ProducerSocket {
  #ws: WebSocket | undefined;
  readonly #open: OpenProducer;
  readonly #maxPending: number;
  /** Frames awaiting their receipt, by context, in send order. */
  readonly #pending = new Map<string, string>();
  #next = 0;
  #wake: (() => void) | undefined;
  #failure: SluiceError | undefined;
  #reconnecting: Promise<void> | undefined;
  /** Messages the broker stored (receipts with `ok`). */
  stored = 0;
  /** Times the socket was opened again after it closed. */
  reconnects = 0;
  readonly #topic: string;

  constructor(open: OpenProducer, maxPending: number, topic: string) {
    this.#open = open;
    this.#maxPending = maxPending;
    this.#topic = topic;
  }

  /** Opens the socket. */
  async start(): Promise<void> {
    this.#attach(await this.#open());
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws;
    ws.addEventListener('message', (ev) => {
      const text =
        typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data as ArrayBuffer).toString('utf8');
      let r: Receipt;
      try {
        r = JSON.parse(text) as Receipt;
      } catch {
        return;
      }
      if (r.context === undefined || !this.#pending.delete(r.context)) return;
      if (r.result === 'ok') this.stored++;
      else
        this.#failure ??= new SluiceError(
          ErrorCode.STAGE,
          `Pulsar refused a message for topic \`${this.#topic}\`: ${r.result}${r.errorMsg ? ` (${r.errorMsg})` : ''}`,
          { component: 'pulsar', topic: this.#topic },
        );
      this.#notify();
    });
    ws.addEventListener('close', () => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      this.#notify();
    });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Frames awaiting a receipt. */
  get pending(): number {
    return this.#pending.size;
  }

  #sleep(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        offAbort(wait);
        resolve();
      };
      this.#wake = done;
      // One listener per signal, not per wait (core/abort-waiters.ts says why).
      const wait = onAbort(signal, done);
    });
  }

  /** Reopens a closed socket and sends again what had no receipt. */
  async #reconnect(): Promise<void> {
    this.#reconnecting ??= (async () => {
      try {
        const ws = await this.#open();
        this.reconnects++;
        this.#attach(ws);
        for (const frame of this.#pending.values()) ws.send(frame);
      } finally {
        this.#reconnecting = undefined;
      }
    })();
    return this.#reconnecting;
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Sends one message frame (without `context`, which is added here); waits first while
   * `maxPending` frames await their receipts. Throws an earlier receipt's error.
   */
  async send(message: Record<string, unknown>, signal: AbortSignal): Promise<void> {
    this.#check();
    while (this.#pending.size >= this.#maxPending || this.#ws === undefined) {
      if (signal.aborted) return;
      if (this.#ws === undefined) await this.#reconnect();
      else await this.#sleep(signal);
      this.#check();
    }
    const context = String(this.#next++);
    const frame = JSON.stringify({ ...message, context });
    this.#pending.set(context, frame);
    this.#ws.send(frame);
  }

  /** Resolves once every frame sent so far has its receipt; throws a receipt's error. */
  async drain(signal: AbortSignal): Promise<void> {
    while (this.#pending.size > 0 && !signal.aborted) {
      this.#check();
      if (this.#ws === undefined) await this.#reconnect();
      else await this.#sleep(signal);
    }
    this.#check();
  }

  /** Closes the socket. */
  close(): void {
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws !== undefined && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING))
      ws.close(1000);
    this.#notify();
  }
}
