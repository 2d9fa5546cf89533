/**
 * The runtime's two waiting primitives: sending a message to every channel of an output with
 * backpressure, and awaiting a stage's call without letting a cancelled run hang on it.
 */
import { offAbort, onAbort } from './abort-waiters.ts';
import type { Channel } from './channel.ts';
import { cancelledError } from './errors.ts';
import type { Message } from './message.ts';

/** A settled promise, returned on fast paths so callers' `await` costs little. */
export const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Settles like `work`, or rejects with a cancellation as soon as `signal` aborts, so a stage
 * stuck in a call that ignores its signal cannot hold a cancelled run open. The abandoned
 * call is left to the stage's `close()`.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (work === (RESOLVED as unknown)) return work;
  if (signal.aborted) return Promise.reject(cancelledError(signal.reason));
  return new Promise<T>((resolve, reject) => {
    // Not an `abort` listener per call: see `abort-waiters.ts`.
    const wait = onAbort(signal, () => reject(cancelledError(signal.reason)));
    work.then(
      (v) => {
        offAbort(wait);
        resolve(v);
      },
      (err) => {
        offAbort(wait);
        reject(err);
      },
    );
  });
}

/**
 * Sends `msg` to every channel: synchronously where there is room, waiting (with
 * backpressure, cancellable by `signal`) where there is not. Returns `RESOLVED` when nothing
 * had to wait, so the caller's `await` is cheap on the fast path.
 */
export function sendAll(
  chans: readonly Channel<Message>[],
  msg: Message,
  signal: AbortSignal,
): Promise<void> {
  let waits: Promise<void>[] | undefined;
  for (const ch of chans) {
    if (ch.trySend(msg)) continue;
    if (waits === undefined) waits = [];
    waits.push(ch.send(msg, signal));
  }
  if (waits === undefined) return RESOLVED;
  return waits.length === 1 ? (waits[0] as Promise<void>) : Promise.all(waits).then(() => {});
}
