/**
 * The Kafka client library, loaded on first use. Importing `@platformatic/kafka` costs about
 * 60 MB of resident memory (measured: a process goes from 41 to 99 MB), which every `sluice`
 * command would otherwise pay just because the registry lists the Kafka connector.
 */
export type KafkaClient = typeof import('@platformatic/kafka');

let loading: Promise<KafkaClient> | undefined;

/** The client module; the first call imports it, later calls share that import. */
export function kafkaClient(): Promise<KafkaClient> {
  loading ??= import('@platformatic/kafka');
  return loading;
}

type Callback<T> = (error: Error | null, value: T) => void;
type Internal = (this: object, arg: unknown, callback: Callback<unknown>) => void;

/** Calls the client's internal method `key` of `base` with `arg` and resolves with its result. */
function callInternal(base: object, key: symbol, arg: unknown): Promise<unknown> {
  const method = (base as Record<symbol, Internal | undefined>)[key];
  if (typeof method !== 'function') {
    return Promise.reject(
      new Error(
        `@platformatic/kafka has no internal ${String(key)}: Sluice needs the client version its package.json names`,
      ),
    );
  }
  return new Promise((resolve, reject) =>
    method.call(base, arg, (err, value) => (err ? reject(err) : resolve(value))),
  );
}

/**
 * The raw protocol API `name` (e.g. `TxnOffsetCommit`) of `base`, a client's producer or
 * consumer, through the client's `kGetApi`: for requests the client sends with other arguments
 * than Sluice needs (metadata, many partitions at once). Call it with a {@link brokerConnection}.
 */
export async function rawApi<T>(base: object, name: string): Promise<T> {
  return (await callInternal(base, (await kafkaClient()).kGetApi, name)) as T;
}

/** `base`'s connection to `broker` (through the client's `kGetConnection`), for a {@link rawApi} call. */
export async function brokerConnection(
  base: object,
  broker: { host: string; port: number },
): Promise<unknown> {
  return callInternal(base, (await kafkaClient()).kGetConnection, broker);
}
