/**
 * An opt-in write-ahead log: what sources emitted since the last completed checkpoint, on local
 * disk, so a restart can rebuild in-memory aggregates even when the input cannot be read again
 * (a socket, stdin, a queue without replay).
 *
 * The log is a folder of append-only segment files `<barrier>-<seq>.wal`: segment `<b>-…` holds
 * entries appended after checkpoint barrier `b` (0 before the first). When checkpoint n
 * completes, every segment before barrier n is deleted (its entries are in checkpoint n). On
 * restart from checkpoint n, the segments from barrier n on are replayed in order.
 *
 * Each entry is framed `[length u32][crc32 u32] payload` (big-endian; payload `v8.serialize`d),
 * so a record torn by a crash in the middle of a write is detected: it is skipped with a
 * warning and the segment is cut back to the last whole entry before new entries are added.
 */
import { type FileHandle, mkdir, open, readdir, readFile, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { wrapError } from '../core/errors.ts';
import type { Logger } from '../core/stage.ts';
import { deserializeState, serializeState } from './serial.ts';

/**
 * When appended entries are fsynced: `always` (each append; survives an OS crash, slowest),
 * `interval` (at most every `fsyncIntervalMs`), `never` (left to the OS: survives a process
 * crash, not a machine crash).
 */
export type FsyncPolicy = 'always' | 'interval' | 'never';

/** Options of {@link WriteAheadLog.open}. */
export interface WalOptions {
  /** Folder of the segment files (created when missing). */
  readonly dir: string;
  /** Default `interval`. */
  readonly fsync?: FsyncPolicy;
  /** For `interval`: longest time between fsyncs, ms. Default 1000. */
  readonly fsyncIntervalMs?: number;
  readonly log: Pick<Logger, 'warn'>;
}

const HEADER = 8;
const SEGMENT = /^(\d{12})-(\d{12})\.wal$/;
const name = (barrier: number, seq: number) =>
  `${String(barrier).padStart(12, '0')}-${String(seq).padStart(12, '0')}.wal`;

interface Segment {
  readonly barrier: number;
  readonly seq: number;
  readonly file: string;
}

/**
 * The write-ahead log of one pipeline.
 *
 * Contract: calls are ordered — `append`, `rotate`, `truncateBefore` and `clear` take effect in
 * call order, each after the previous one's file work. `append` resolves once the entry is
 * written (and fsynced, per the policy).
 *
 * @example
 * const wal = await WriteAheadLog.open({ dir: '.sluice/p/wal', fsync: 'always', log: console });
 * for await (const e of wal.replay(undefined)) console.log(e);
 * await wal.append({ records: [1, 2, 3] });
 * await wal.close();
 */
export class WriteAheadLog {
  private readonly dir: string;
  private readonly policy: FsyncPolicy;
  private readonly intervalMs: number;
  private readonly log: Pick<Logger, 'warn'>;
  private handle: FileHandle | undefined;
  private current: Segment | undefined;
  private seq: number;
  private lastSync = 0;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  /** Bytes appended by this process (for metrics). */
  bytesAppended = 0;

  private constructor(options: WalOptions, seq: number) {
    this.dir = options.dir;
    this.policy = options.fsync ?? 'interval';
    this.intervalMs = options.fsyncIntervalMs ?? 1000;
    this.log = options.log;
    this.seq = seq;
  }

  /** Opens (creating it when missing) the log in `options.dir`. */
  static async open(options: WalOptions): Promise<WriteAheadLog> {
    try {
      await mkdir(options.dir, { recursive: true });
      const segs = await segments(options.dir);
      return new WriteAheadLog(options, segs.length === 0 ? 0 : (segs[segs.length - 1] as Segment).seq);
    } catch (err) {
      throw wrapError(`opening the write-ahead log \`${options.dir}\``, err, { file: options.dir });
    }
  }

  /**
   * Every intact entry logged after checkpoint `restoredId` (all of them when undefined), in
   * append order. A torn or corrupt entry ends its segment: it and anything after it in that
   * segment are skipped with a warning, and the file is cut back to the last whole entry.
   * Call before the first `append`.
   */
  async *replay(restoredId: number | undefined): AsyncGenerator<unknown> {
    for (const seg of await segments(this.dir)) {
      if (restoredId !== undefined && seg.barrier < restoredId) continue;
      const path = join(this.dir, seg.file);
      const bytes = await readFile(path);
      let off = 0;
      while (off < bytes.length) {
        const bad = entryProblem(bytes, off);
        if (bad !== undefined) {
          this.log.warn(
            `Write-ahead log \`${seg.file}\` has a ${bad} at byte ${off} (a write cut short by a crash); skipping the rest of the segment`,
            { file: path, offset: off },
          );
          await truncate(path, off);
          break;
        }
        const len = bytes.readUInt32BE(off);
        yield deserializeState(
          bytes.subarray(off + HEADER, off + HEADER + len),
          `write-ahead log \`${seg.file}\` at byte ${off}`,
        );
        off += HEADER + len;
      }
    }
  }

  /** Appends one entry (any structured-cloneable value). */
  append(entry: unknown): Promise<void> {
    const payload = serializeState(entry, 'a batch in the write-ahead log');
    const framed = Buffer.allocUnsafe(HEADER + payload.length);
    framed.writeUInt32BE(payload.length, 0);
    framed.writeUInt32BE(crc32(payload), 4);
    framed.set(payload, HEADER);
    return this.enqueue(async () => {
      const h = await this.segmentHandle();
      let off = 0;
      while (off < framed.length) off += (await h.write(framed, off, framed.length - off, null)).bytesWritten;
      this.bytesAppended += framed.length;
      if (
        this.policy === 'always' ||
        (this.policy === 'interval' && performance.now() - this.lastSync >= this.intervalMs)
      ) {
        await h.datasync();
        this.lastSync = performance.now();
      }
    });
  }

  /** Entries appended from now on come after barrier `barrier`: start a new segment. */
  rotate(barrier: number): void {
    this.enqueue(async () => {
      await this.closeSegment();
      this.current = { barrier, seq: ++this.seq, file: name(barrier, this.seq) };
    }).catch(() => {});
  }

  /** Checkpoint `id` completed: deletes every segment of entries from before barrier `id`. */
  truncateBefore(id: number): Promise<void> {
    return this.enqueue(async () => {
      for (const seg of await segments(this.dir)) {
        if (seg.barrier < id && seg.file !== this.current?.file)
          await rm(join(this.dir, seg.file), { force: true });
      }
    });
  }

  /** Deletes every segment (the job finished). */
  clear(): Promise<void> {
    return this.enqueue(async () => {
      await this.closeSegment();
      for (const seg of await segments(this.dir)) await rm(join(this.dir, seg.file), { force: true });
    });
  }

  /** Fsyncs and closes the current segment. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => {});
    await this.closeSegment();
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.chain.then(work);
    this.chain = next.catch(() => {});
    return next;
  }

  private async segmentHandle(): Promise<FileHandle> {
    if (this.handle !== undefined) return this.handle;
    this.current ??= { barrier: 0, seq: ++this.seq, file: name(0, this.seq) };
    this.handle = await open(join(this.dir, this.current.file), 'a');
    return this.handle;
  }

  private async closeSegment(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h === undefined) return;
    if (this.policy !== 'never') await h.datasync().catch(() => {});
    await h.close().catch(() => {});
  }

  /** After a restart from checkpoint `restoredId`, new entries follow that barrier. */
  resumeAfter(restoredId: number | undefined): void {
    this.current = { barrier: restoredId ?? 0, seq: ++this.seq, file: name(restoredId ?? 0, this.seq) };
  }
}

/** Why the entry at `off` is not whole, or undefined when it is. */
function entryProblem(bytes: Buffer, off: number): string | undefined {
  if (bytes.length - off < HEADER) return 'torn entry header';
  const len = bytes.readUInt32BE(off);
  if (bytes.length - off - HEADER < len) return 'torn entry';
  if (crc32(bytes.subarray(off + HEADER, off + HEADER + len)) !== bytes.readUInt32BE(off + 4))
    return 'corrupt entry (checksum mismatch)';
  return undefined;
}

async function segments(dir: string): Promise<Segment[]> {
  const out: Segment[] = [];
  for (const file of await readdir(dir)) {
    const m = SEGMENT.exec(file);
    if (m) out.push({ barrier: Number(m[1]), seq: Number(m[2]), file });
  }
  return out.sort((a, b) => a.seq - b.seq);
}
