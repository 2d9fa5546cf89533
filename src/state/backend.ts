/**
 * Where state and checkpoints are kept durably: a {@link StateBackend} is a small key-value
 * store whose one write call is atomic. Live keyed state lives on the heap between checkpoints
 * (see `keyed.ts`), so the per-record path never waits on a store; the backend is written at
 * checkpoints and read on restore.
 *
 * Why this shape: atomic batch writes plus prefix listing is exactly what every store we plan
 * to support offers — an LMDB or SQLite transaction, Redis `MULTI`/`EXEC`, a PostgreSQL
 * transaction — so a new backend is a page of code and the checkpoint protocol does not change.
 *
 * Backends: {@link memoryBackend} (tests; gone with the process), {@link lmdbBackend} (the
 * embedded default, in the checkpoint directory), `postgresBackend` (`postgres.ts`) and
 * `redisBackend` (`redis.ts`); `openStateBackend` (`open.ts`) opens the one a pipeline's
 * `checkpoint.store` names. Every one passes the suite in `test/state/contract.ts`. `npm run bench -- checkpoint` measured
 * `lmdb` against the built-in `node:sqlite` on this machine class (1 M random 16-byte values,
 * 3 runs, medians): puts 720 k/s vs 221 k/s, gets 735 k/s vs 203 k/s, 16 MB of snapshot blobs
 * written in 28 ms vs 68 ms and read in 8 ms vs 34 ms — so LMDB is the default.
 */
import { mkdir, statfs } from 'node:fs/promises';
import { ErrorCode, SluiceError, wrapError } from '../core/errors.ts';

/** Free bytes the embedded store keeps beyond twice a write (LMDB copies pages on write). */
const DISK_MARGIN = 1024 * 1024;

/** Bytes free to an unprivileged writer on the disk holding `dir`, or undefined when unknown. */
async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/** Errors of a write the disk refused: errno names and the numbers LMDB reports them by. */
const DISK_ERRORS: Readonly<Record<string, string>> = {
  ENOSPC: 'ENOSPC',
  EFBIG: 'EFBIG',
  EDQUOT: 'EDQUOT',
  EIO: 'EIO',
  '28': 'ENOSPC',
  '27': 'EFBIG',
  '122': 'EDQUOT',
  // LMDB turns a short write (what a full disk or a file-size limit gives) into EIO.
  '5': 'EIO',
};

/** `ENOSPC`, `EFBIG`, `EDQUOT` or `EIO` when `err` is the disk refusing a write, else undefined. */
export function diskErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return code === undefined || code === null ? undefined : DISK_ERRORS[String(code)];
}

/**
 * The one error of a write the disk refused: the store, its folder, the errno, and what to do;
 * `SLUICE_DISK_FULL`, so the checkpoint coordinator stops the run (the last complete checkpoint
 * stays usable: a run started once there is room resumes from it).
 */
export function diskFull(
  dir: string,
  code: string,
  free: number | undefined,
  bytes: number,
  cause?: unknown,
): SluiceError {
  const room =
    free === undefined
      ? ''
      : `, ${Math.floor(free / 1024)} KiB free for a ${Math.ceil(bytes / 1024)} KiB write`;
  const what =
    code === 'EIO'
      ? 'the disk refused the write (EIO, which LMDB reports for a short write: a full disk or a file-size limit)'
      : code === 'EFBIG'
        ? 'the file reached the size limit (EFBIG)'
        : `the disk is full (${code})`;
  return new SluiceError(
    ErrorCode.DISK_FULL,
    `writing the state store \`${dir}\`: ${what}${room}; free space there or set checkpoint \`dir\` to another disk, then run again: it resumes from the last complete checkpoint`,
    { file: dir, errno: code },
    cause === undefined ? {} : { cause },
  );
}

/**
 * A durable key-value store with atomic batch writes.
 *
 * Contract: `write` applies every entry of one call or none of them (a crash in the middle
 * leaves the store as before the call), and resolves only once the write is durable (it
 * survives a process kill; for an embedded store, an OS crash too). Reads see every write that
 * resolved. Calls may overlap; a backend orders writes in call order.
 */
export interface StateBackend {
  /** `memory`, `lmdb`, … (for logs and metrics). */
  readonly kind: string;
  /** Sets each key to its value, or deletes it for `null`: atomically and durably. */
  write(entries: ReadonlyMap<string, Uint8Array | null>): Promise<void>;
  /** The value of `key`, or undefined. */
  read(key: string): Promise<Uint8Array | undefined>;
  /** Every key starting with `prefix`, in ascending byte order. */
  keys(prefix: string): Promise<string[]>;
  /** Releases the store (files, connections). Idempotent. */
  close(): Promise<void>;
}

/**
 * A {@link StateBackend} on the heap: for tests and for runs that need no recovery. `write`
 * copies the bytes, so a caller may reuse its buffers.
 *
 * @example
 * const b = memoryBackend();
 * await b.write(new Map([['a', new Uint8Array([1])]]));
 * (await b.read('a'))?.[0]; // 1
 */
export function memoryBackend(): StateBackend & { readonly data: Map<string, Uint8Array> } {
  const data = new Map<string, Uint8Array>();
  return {
    kind: 'memory',
    data,
    async write(entries) {
      for (const [k, v] of entries) {
        if (v === null) data.delete(k);
        else data.set(k, Uint8Array.prototype.slice.call(v));
      }
    },
    async read(key) {
      return data.get(key);
    },
    async keys(prefix) {
      // Byte order (UTF-8), not UTF-16 order: encode each key once, then compare bytes.
      return [...data.keys()]
        .filter((k) => k.startsWith(prefix))
        .map((k) => ({ k, b: Buffer.from(k, 'utf8') }))
        .sort((x, y) => Buffer.compare(x.b, y.b))
        .map((x) => x.k);
    },
    async close() {},
  };
}

/** Options of {@link lmdbBackend}. */
export interface LmdbBackendOptions {
  /** Directory of the store (created when missing). */
  readonly dir: string;
}

/**
 * A {@link StateBackend} in an LMDB environment under `dir` (embedded, crash-safe: a
 * copy-on-write B-tree whose commits are atomic and fsynced). The `lmdb` package ships
 * prebuilt N-API binaries, so nothing is compiled at install time.
 *
 * Throws a `SLUICE_STAGE` error naming the directory when it cannot be created or opened.
 *
 * @example
 * const b = await lmdbBackend({ dir: '.sluice/orders' });
 * await b.write(new Map([['k', Buffer.from('v')]]));
 * await b.close();
 */
export async function lmdbBackend(options: LmdbBackendOptions): Promise<StateBackend> {
  const { dir } = options;
  let db: import('lmdb').Database<Buffer, string>;
  try {
    await mkdir(dir, { recursive: true });
    // Loaded lazily: a run without checkpoints never loads the native module.
    const lmdb = await import('lmdb');
    db = lmdb.open<Buffer, string>({ path: dir, encoding: 'binary', compression: false });
  } catch (err) {
    throw new SluiceError(
      ErrorCode.STAGE,
      `cannot open the state store in \`${dir}\`: ${(err as Error).message}; check that the folder is writable (checkpoint \`dir\`)`,
      { file: dir },
      { cause: err },
    );
  }
  let closed = false;
  // Writes run one after another in call order (the contract): the free-space check awaits, so
  // without this queue a later write could overtake an earlier one.
  let tail: Promise<void> = Promise.resolve();
  const writeNow = async (entries: ReadonlyMap<string, Uint8Array | null>): Promise<void> => {
    let bytes = 0;
    for (const v of entries.values()) if (v !== null) bytes += v.byteLength;
    // A disk about to be full is refused here, before LMDB tries: LMDB reports a short write
    // as a bare EIO.
    const free = await freeBytes(dir);
    if (free !== undefined && free < 2 * bytes + DISK_MARGIN) throw diskFull(dir, 'ENOSPC', free, bytes);
    try {
      // A synchronous transaction: a put that throws (a key over LMDB's 1978 bytes) aborts every
      // put of this call, and a commit the disk refuses throws here. The asynchronous ones
      // (`transaction`, `childTransaction`) do not fail cleanly: a failed commit crashed the
      // process with an unhandled rejection (the promise of lmdb's own event-turn batch) or,
      // without that batching, left the write pending forever (lmdb 3.x). Checkpoints write
      // once per interval, so the commit's fsync blocking the thread is the price.
      db.transactionSync(() => {
        for (const [k, v] of entries) {
          if (v === null) db.removeSync(k);
          else db.putSync(k, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
        }
      });
    } catch (err) {
      const code = diskErrorCode(err);
      if (code !== undefined) throw diskFull(dir, code, await freeBytes(dir), bytes, err);
      throw wrapError(`writing the state store \`${dir}\``, err, { file: dir });
    }
  };
  return {
    kind: 'lmdb',
    write(entries) {
      const p = tail.then(() => writeNow(entries));
      tail = p.catch(() => {});
      return p;
    },
    async read(key) {
      const v = db.getBinary(key);
      return v === undefined ? undefined : Buffer.from(v);
    },
    async keys(prefix) {
      const out: string[] = [];
      for (const k of db.getKeys({ start: prefix })) {
        if (typeof k !== 'string' || !k.startsWith(prefix)) break;
        out.push(k);
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.close();
    },
  };
}
