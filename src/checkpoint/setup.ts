/**
 * From a pipeline's `checkpoint:` settings to a running {@link CheckpointCoordinator}: opens
 * the store (the embedded LMDB in the checkpoint folder, or PostgreSQL / Redis when `store`
 * names one), the write-ahead log when asked for, and the crash-test hooks when the environment
 * sets them.
 */

import { basename, join } from 'node:path';
import type { TlsConfig } from '../clients/tls.ts';
import { type Clock, systemClock } from '../core/clock.ts';
import type { Logger } from '../core/stage.ts';
import { openStateBackend } from '../state/open.ts';
import { CheckpointCoordinator, type CoordinatorHooks } from './coordinator.ts';
import { PartitionStates } from './partitions.ts';
import { CheckpointStore, type StoreHooks } from './store.ts';
import { type FsyncPolicy, WriteAheadLog } from './wal.ts';

/** Resolved checkpoint settings of a pipeline. */
export interface CheckpointSettings {
  /**
   * Absolute folder of the embedded store and the write-ahead log (`.sluice/<name>/` beside the
   * pipeline file by default).
   */
  readonly dir: string;
  /** A server store instead of the embedded one: `postgres://…`, `redis://…` (see `openStateBackend`). */
  readonly store?: string | undefined;
  /** TLS to the `store` server (see `clients/tls.ts`). */
  readonly storeTls?: TlsConfig | true | undefined;
  /**
   * A server `store`: how long (ms) it may stay unreachable. Checkpoints wait meanwhile; past it
   * the run fails and the next run resumes from the last stored checkpoint. Default 60 000.
   */
  readonly storeTimeoutMs?: number | undefined;
  /** The pipeline's namespace in a server `store`; default the last part of `dir`. */
  readonly namespace?: string | undefined;
  /** Time between checkpoints, ms. */
  readonly intervalMs: number;
  /** Also checkpoint after this many records read. */
  readonly everyRecords?: number | undefined;
  /** Completed checkpoints kept. Default 3. */
  readonly retain?: number | undefined;
  /** Write-ahead log, with its fsync policy; undefined: off. */
  readonly wal?: { readonly fsync: FsyncPolicy } | undefined;
  /** `partition`: scale-out, state per Kafka partition in a store shared by the group (see `partitions.ts`). */
  readonly scope?: 'pipeline' | 'partition' | undefined;
}

/**
 * The environment variable a crash test sets to kill the process (SIGKILL) at a precise point:
 * `mid-write:<id>` — checkpoint `id`'s state is written but not its metadata; `after-store:<id>`
 * — it is stored but positions are not committed yet; `before-clear` — the run succeeded and its
 * sinks finished, but its checkpoints are not deleted yet.
 */
export const CRASH_ENV = 'SLUICE_TEST_CRASH';

/** Hooks that SIGKILL the process where `spec` (the value of {@link CRASH_ENV}) says. */
function crashHooks(spec: string | undefined): { store: StoreHooks; coordinator: CoordinatorHooks } {
  if (spec === 'before-clear') {
    return { store: {}, coordinator: { beforeClear: () => process.kill(process.pid, 'SIGKILL') } };
  }
  const m = spec === undefined ? null : /^(mid-write|after-store):(\d+)$/.exec(spec);
  if (m === null) return { store: {}, coordinator: {} };
  const at = Number(m[2]);
  const kill = (id: number) => {
    if (id === at) process.kill(process.pid, 'SIGKILL');
  };
  return m[1] === 'mid-write'
    ? { store: { afterBlobs: kill }, coordinator: {} }
    : { store: {}, coordinator: { afterStore: kill } };
}

/**
 * Opens the checkpoint machinery for one run. Throws a `SLUICE_STAGE` error naming the folder
 * or the server when the store cannot be opened.
 *
 * @example
 * const checkpoint = await openCheckpoints({ dir: '/data/.sluice/orders', intervalMs: 10_000 }, { log: console });
 * await pipeline.run({ checkpoint }).done;
 */
export async function openCheckpoints(
  settings: CheckpointSettings,
  options: { log: Logger; clock?: Clock; env?: Readonly<Record<string, string | undefined>> },
): Promise<CheckpointCoordinator> {
  const hooks = crashHooks((options.env ?? process.env)[CRASH_ENV]);
  const storeOf = (dir: string) =>
    settings.store === undefined
      ? { dir: join(settings.dir, dir) }
      : {
          url: settings.store,
          tls: settings.storeTls,
          namespace: settings.namespace ?? basename(settings.dir),
        };
  if (settings.scope === 'partition') {
    // One store that every process of the group opens: an LMDB environment in the shared folder
    // (LMDB serialises their writes), or the `store:` server.
    const shared = await openStateBackend(storeOf('partitions'), {
      log: options.log,
      retryTimeoutMs: settings.storeTimeoutMs,
    });
    return new CheckpointCoordinator({
      store: new CheckpointStore(shared, { log: options.log }),
      intervalMs: settings.intervalMs,
      everyRecords: settings.everyRecords,
      clock: options.clock ?? systemClock,
      log: options.log,
      hooks: hooks.coordinator,
      partitions: new PartitionStates(shared, options.log),
    });
  }
  const backend = await openStateBackend(storeOf('store'), {
    log: options.log,
    retryTimeoutMs: settings.storeTimeoutMs,
  });
  const store = new CheckpointStore(backend, {
    retain: settings.retain,
    log: options.log,
    hooks: hooks.store,
  });
  const wal =
    settings.wal === undefined
      ? undefined
      : await WriteAheadLog.open({
          dir: join(settings.dir, 'wal'),
          fsync: settings.wal.fsync,
          log: options.log,
        });
  return new CheckpointCoordinator({
    store,
    intervalMs: settings.intervalMs,
    everyRecords: settings.everyRecords,
    clock: options.clock ?? systemClock,
    log: options.log,
    hooks: hooks.coordinator,
    wal,
  });
}
