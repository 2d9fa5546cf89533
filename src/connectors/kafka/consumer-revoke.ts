/**
 * The revoke step of the KIP-848 `consumer` group protocol: before this member tells the group
 * coordinator it gave partitions up, the source commits (or checkpoints) what it processed of
 * them — the same step the classic protocol's cooperative rebalance waits for (`consumer.ts`
 * `commitBeforeRevoke`).
 *
 * Under that protocol the assignment arrives in ConsumerGroupHeartbeat responses. A member
 * acknowledges a revocation by sending a heartbeat whose owned partitions no longer include them,
 * and only then does the coordinator hand them to their next owner (bounded by the rebalance
 * timeout, past which the member is fenced). `@platformatic/kafka` reconciles a response in
 * private methods (`#revokePartitions`, `#assignPartitions`, `#updateAssignments` of
 * `clients/consumer/consumer.js`, written against 2.12.1) that cannot be wrapped; what can be is
 * their order, all synchronous in one call:
 *
 * 1. `#revokePartitions` emits `consumer:group:rebalance` (under this protocol only when a response
 *    takes partitions away), pauses the streams and calls `#updateAssignments`;
 * 2. `#updateAssignments` asks the client's metadata (`[kMetadata]`, a symbol method on the instance)
 *    to map topic ids to names, and in its callback records the new assignment (`#assignments`,
 *    the owned partitions the next heartbeat sends, and the public `assignments`) and sends that
 *    heartbeat at once: the acknowledgement;
 * 3. `#assignPartitions` does the same for partitions added in that response.
 *
 * So the event starts the source's revoke step, and the metadata callbacks requested in the same
 * synchronous call are held until it is done: the acknowledgement (and so the next owner's start)
 * waits for the commit or checkpoint. The metadata itself is fetched at once; only its callback
 * waits. When the step is done the held callbacks run in the same microtask, so the new assignment
 * is recorded — and the source told (`changed`, through a setter on `assignments`) — before the
 * source's read loop reads another message of a revoked partition. A later response during the wait
 * repeats the revocation (the client still owns the old partitions) and is held by the same step.
 *
 * Offsets committed outside the client (`group.ts` OffsetCommit, `txn.ts` TxnOffsetCommit) send
 * `generationId`, which under this protocol must be the member epoch; the client keeps that epoch
 * private and leaves `generationId` at 0 ("Specified group generation id is not valid": every
 * exactly-once checkpoint failed). The heartbeat's response is read for it (`keepMemberEpoch`).
 */
import type { Consumer } from '@platformatic/kafka';
import type { Clock } from '../../core/clock.ts';

type KafkaConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;
type MetadataCallback = (error: Error | null, metadata?: unknown) => void;
type MetadataMethod = (options: unknown, callback: MetadataCallback) => void;

/**
 * Longest a revocation is held for the source's revoke step, whatever happens to it: above the
 * source's own bounds (4 s for `parallel` steps, then 15 s for a checkpoint), below the client's
 * rebalance timeout for this protocol (102 s), past which the coordinator fences the member.
 */
export const REVOKE_HOLD_MAX_MS = 25_000;

/** What {@link holdRevocations} asks of the {@link GroupConsumer} it serves. */
export interface RevokeHooks {
  /** Commit or checkpoint what was processed before partitions are given up (the source's revoke step). */
  revoking(): Promise<void>;
  /** The consumer's `assignments` changed (called synchronously, from the client's callback). */
  changed(): void;
  /** Bounds each hold ({@link REVOKE_HOLD_MAX_MS}); `signal` aborts the wait (the run ended). */
  readonly clock: Clock;
  readonly signal: AbortSignal;
}

/**
 * Makes `consumer` (created with `groupProtocol: 'consumer'`) wait for `hooks.revoking()` before it
 * acknowledges a revocation, and call `hooks.changed()` whenever its assignment changes; see the
 * module comment. Call once, before `consume`. Returns false, changing nothing, when the client
 * does not have the internals this relies on (another version: partitions are then given up
 * without the step, as before).
 *
 * @example
 * const c = new Consumer({ groupId: 'etl', groupProtocol: 'consumer', bootstrapBrokers });
 * holdRevocations(c, { revoking: () => commitProcessed(), changed: () => report(c.assignments), clock, signal });
 */
export function holdRevocations(consumer: KafkaConsumer, hooks: RevokeHooks): boolean {
  const target = consumer as unknown as Record<symbol, MetadataMethod | undefined>;
  const kMetadata = findSymbol(consumer, 'plt.kafka.base.metadata');
  const original = kMetadata === undefined ? undefined : target[kMetadata];
  if (kMetadata === undefined || typeof original !== 'function' || !('assignments' in consumer)) return false;

  /** The revoke step in progress: metadata callbacks held until it is done. */
  let held: (() => void)[] | undefined;
  /** True during the synchronous call that reconciles a response taking partitions away. */
  let reconciling = false;

  consumer.on('consumer:group:rebalance', () => {
    reconciling = true;
    queueMicrotask(() => {
      reconciling = false;
    });
    if (held !== undefined) return; // a repeated revocation: the step in progress covers it
    const step: (() => void)[] = [];
    held = step;
    const local = new AbortController();
    const release = () => {
      local.abort();
      if (held === step) held = undefined;
      for (const run of step.splice(0)) run();
    };
    hooks.clock
      .sleep(REVOKE_HOLD_MAX_MS, AbortSignal.any([hooks.signal, local.signal]))
      .then(release, release);
    // Directly in the step's `then`, as the classic path does: the new assignment is recorded
    // before the read loop, which awaited the same step, goes on reading.
    hooks.revoking().then(release, release);
  });

  target[kMetadata] = (options: unknown, callback: MetadataCallback) => {
    if (!reconciling || held === undefined) return original.call(consumer, options, callback);
    let metadataError: Error | null = null;
    let metadata: unknown;
    let arrived = false;
    let released = false;
    const finish = () => {
      if (arrived && released) callback(metadataError, metadata);
    };
    held.push(() => {
      released = true;
      finish();
    });
    original.call(consumer, options, (error, md) => {
      metadataError = error;
      metadata = md;
      arrived = true;
      finish();
    });
  };

  keepMemberEpoch(consumer);

  // The client records every new assignment in this public field, and under this protocol emits
  // no event after it does; a setter tells the source at that moment.
  let assignments = consumer.assignments;
  Object.defineProperty(consumer, 'assignments', {
    configurable: true,
    enumerable: true,
    get: () => assignments,
    set: (value: typeof assignments) => {
      assignments = value;
      hooks.changed();
    },
  });
  return true;
}

/** A symbol of the client's (internal, not exported) found by its description on `o`'s prototypes. */
function findSymbol(o: object, description: string): symbol | undefined {
  for (let p: object | null = o; p !== null; p = Object.getPrototypeOf(p) as object | null) {
    const key = Object.getOwnPropertySymbols(p).find((k) => k.description === description);
    if (key !== undefined) return key;
  }
  return undefined;
}

type ApiCallback = (error: Error | null, response?: { memberEpoch?: number }) => void;
type Api = (...args: unknown[]) => void;

/**
 * Keeps `consumer.generationId` at the member epoch of its last ConsumerGroupHeartbeat response
 * (see the module comment), by wrapping the API function the client's `[kGetApi]` hands it.
 */
function keepMemberEpoch(consumer: KafkaConsumer): void {
  const target = consumer as unknown as Record<symbol, unknown>;
  const kGetApi = findSymbol(consumer, 'plt.kafka.base.getApi');
  const getApi = kGetApi === undefined ? undefined : target[kGetApi];
  if (kGetApi === undefined || typeof getApi !== 'function') return;
  target[kGetApi] = (name: string, callback: (error: Error | null, api?: Api) => void) =>
    (getApi as (n: string, cb: (error: Error | null, api?: Api) => void) => unknown).call(
      consumer,
      name,
      (error: Error | null, api?: Api) => {
        if (name !== 'ConsumerGroupHeartbeat' || error !== null || api === undefined)
          return callback(error, api);
        const wrapped: Api = (...args) => {
          const done = args.pop() as ApiCallback;
          api(...args, (err: Error | null, response?: { memberEpoch?: number }) => {
            const epoch = response?.memberEpoch;
            // A leave sends -1 and gets it back; the epoch of a member still in the group is ≥ 0.
            if (err === null && epoch !== undefined && epoch >= 0) consumer.generationId = epoch;
            done(err, response);
          });
        };
        callback(null, Object.assign(wrapped, api));
      },
    );
}
