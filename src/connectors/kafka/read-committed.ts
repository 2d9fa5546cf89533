/**
 * Correct `read_committed` filtering for `@platformatic/kafka` consumers.
 *
 * The client (2.12) drops the records of an aborted transaction only when the same fetch
 * response also holds the transaction's abort marker, and keeps one aborted range per producer
 * id. An aborted transaction cut by the end of a fetch response, or a second aborted
 * transaction of the same producer id in one response (a restarted transactional producer keeps
 * its id and bumps the epoch), was delivered as if committed: a read_committed reader of an
 * exactly-once Sluice output saw duplicates (seen in `eos.kafka.it.test.ts`; `kcat` with
 * `isolation.level=read_committed` saw none).
 *
 * {@link fixReadCommitted} filters every fetch response the way the Java consumer does before
 * the client sees it: the broker lists, in each response, every aborted transaction that
 * overlaps it (producer id, first offset); walking the record batches in offset order, a
 * producer's transactional batches are emptied from its aborted transaction's first offset
 * until its abort marker. The response's aborted list is then emptied, so the client's own
 * filter does nothing.
 *
 * An aborted batch is emptied, never removed: the client takes the next offset to fetch from
 * the last batch of a partition's response. Removing the batches once made a response that held
 * only an aborted transaction (its abort marker in a later response: a transaction larger than
 * the fetch size) leave the offset where it was, and the client fetched the same offset again,
 * forever — a read_committed source read nothing more of that partition and, with
 * `idleTimeout`, ended as finished with the rest of it unread (2,680 – 3,629 of 12,000 records
 * in `eos.kafka.it.test.ts` once fetches were 64 KB; with 1 MB fetches it needs a transaction
 * over 1 MB).
 */
import type { Consumer, kGetApi } from '@platformatic/kafka';
import { kafkaClient } from './client.ts';

/** Record batch attribute bits (Kafka protocol). */
const IS_TRANSACTIONAL = 1 << 4;
const IS_CONTROL = 1 << 5;

/** The part of a fetched record batch this filter reads. */
export interface FetchedBatch {
  readonly firstOffset: bigint;
  readonly producerId: bigint;
  readonly attributes: number;
  readonly records: readonly { readonly key?: Buffer | null | undefined }[];
}

/** One partition of a fetch response. */
export interface FetchedPartition {
  abortedTransactions?: { producerId: bigint; firstOffset: bigint }[] | null;
  records?: FetchedBatch[] | null;
}

/** An abort marker: a control batch whose record key has type 0 (commit markers are type 1). */
function isAbortMarker(batch: FetchedBatch): boolean {
  const key = batch.records[0]?.key;
  return (
    (batch.attributes & IS_CONTROL) !== 0 && key !== undefined && key !== null && key.readInt16BE(2) === 0
  );
}

/**
 * Empties the batches of aborted transactions in one partition of a fetch response (each keeps
 * its offsets, so the client still moves past it) and empties its aborted list. Exported for tests.
 */
export function dropAborted(partition: FetchedPartition): void {
  const aborted = partition.abortedTransactions;
  const batches = partition.records;
  if (!aborted || aborted.length === 0 || !batches) return;
  const pending = [...aborted].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1));
  const open = new Set<bigint>();
  let next = 0;
  partition.records = batches.map((batch) => {
    while (
      next < pending.length &&
      (pending[next] as { firstOffset: bigint }).firstOffset <= batch.firstOffset
    ) {
      open.add((pending[next] as { producerId: bigint }).producerId);
      next++;
    }
    if ((batch.attributes & IS_CONTROL) !== 0) {
      if (isAbortMarker(batch)) open.delete(batch.producerId);
      return batch;
    }
    const dropped = (batch.attributes & IS_TRANSACTIONAL) !== 0 && open.has(batch.producerId);
    return dropped ? { ...batch, records: [] } : batch;
  });
  partition.abortedTransactions = [];
}

type Callback<T> = (error: Error | null, value: T) => void;
type Api = ((...args: unknown[]) => void) & Record<string, unknown>;
interface Internals {
  [kGetApi](name: string, callback: Callback<Api>): void;
}

/**
 * Makes `consumer` filter aborted transactions correctly (see the module comment). Call once,
 * before it fetches.
 */
export async function fixReadCommitted(consumer: Consumer<Buffer, Buffer, Buffer, Buffer>): Promise<void> {
  const client = await kafkaClient();
  const internals = consumer as unknown as Internals;
  const original = internals[client.kGetApi].bind(consumer);
  internals[client.kGetApi] = (name, callback) =>
    original(name, (error, api) => {
      if (error || name !== 'Fetch') {
        callback(error, api);
        return;
      }
      const wrapped = ((...args: unknown[]) => {
        const done = args.pop() as Callback<unknown>;
        api(...args, (err: Error | null, result: unknown) => {
          const response = (result ?? (err as { response?: unknown } | null)?.response) as
            | { responses?: { partitions?: FetchedPartition[] }[] }
            | undefined;
          for (const topic of response?.responses ?? [])
            for (const p of topic.partitions ?? []) dropAborted(p);
          done(err, result);
        });
      }) as Api;
      Object.assign(wrapped, api);
      callback(null, wrapped);
    });
}
