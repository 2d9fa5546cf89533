/**
 * What the `postgres` sink's open transaction holds, kept to send it again on a new connection
 * after the old one broke (the server rolled the transaction back). With exactly-once a
 * transaction spans a whole checkpoint, so this can be many rows: past `memoryLimit` bytes the
 * COPY bytes go to a temporary file instead of memory, so the sink's memory stays bounded
 * whatever the checkpoint interval and the input rate.
 */
import type { FileHandle } from 'node:fs/promises';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, SluiceError } from '../../core/errors.ts';

/**
 * One chunk the transaction holds: `insert` keeps the COPY bytes as sent (compact, off the JS
 * heap), `upsert` its rows (of type `R`).
 */
export interface HeldChunk<R> {
  readonly payload?: Buffer;
  readonly rows?: R[];
  readonly count: number;
}

type Entry<R> = HeldChunk<R> | { readonly offset: number; readonly length: number; readonly count: number };

/**
 * An ordered list of {@link HeldChunk}s, in memory up to `memoryLimit` bytes of COPY payload,
 * in a temporary file past it. Not safe for concurrent use: the sink calls it from one step at a
 * time.
 *
 * @example
 * const held = new HeldChunks<Row>(64 << 20);
 * await held.add({ payload, count: 5000 });
 * for (const entry of held.take()) await resend(await held.load(entry));
 */
export class HeldChunks<R> {
  private entries: Entry<R>[] = [];
  private inMemory = 0;
  private rowCount = 0;
  private file: FileHandle | undefined;
  private dir: string | undefined;
  /** Where the next spilled payload goes; reset only by {@link clear}, so that `take` can reread. */
  private end = 0;
  private readonly memoryLimit: number;

  constructor(memoryLimit: number) {
    this.memoryLimit = memoryLimit;
  }

  /** Rows held. */
  get rows(): number {
    return this.rowCount;
  }

  /** Bytes of payload written to the temporary file since the last {@link clear}. */
  get spilledBytes(): number {
    return this.end;
  }

  /** Appends a chunk; its payload goes to the temporary file when memory is full. */
  async add(chunk: HeldChunk<R>): Promise<void> {
    this.rowCount += chunk.count;
    const payload = chunk.payload;
    if (payload === undefined || this.inMemory + payload.length <= this.memoryLimit) {
      this.entries.push(chunk);
      if (payload !== undefined) this.inMemory += payload.length;
      return;
    }
    const file = await this.openFile();
    let done = 0;
    while (done < payload.length) {
      const { bytesWritten } = await file.write(payload, done, payload.length - done, this.end + done);
      done += bytesWritten;
    }
    this.entries.push({ offset: this.end, length: payload.length, count: chunk.count });
    this.end += payload.length;
  }

  /**
   * Removes and returns every entry, in order, to be sent again (each through {@link load}) and
   * added back. What was spilled stays readable until {@link clear}.
   */
  take(): Entry<R>[] {
    const out = this.entries;
    this.entries = [];
    this.inMemory = 0;
    this.rowCount = 0;
    return out;
  }

  /**
   * Puts back what {@link take} returned, dropping what was added since: a resend that failed
   * half-way must find every chunk again on the next connection.
   */
  restore(entries: Entry<R>[]): void {
    this.entries = entries;
    this.inMemory = 0;
    this.rowCount = 0;
    for (const e of entries) {
      this.rowCount += e.count;
      if ('payload' in e && e.payload !== undefined) this.inMemory += e.payload.length;
    }
  }

  /** The chunk of an entry from {@link take}, read back from the file when it was spilled. */
  async load(entry: Entry<R>): Promise<HeldChunk<R>> {
    if (!('offset' in entry)) return entry;
    const buf = Buffer.allocUnsafe(entry.length);
    let done = 0;
    while (done < entry.length) {
      const { bytesRead } = await (this.file as FileHandle).read(
        buf,
        done,
        entry.length - done,
        entry.offset + done,
      );
      if (bytesRead === 0) {
        const path = join(this.dir as string, 'transaction.copy');
        throw new SluiceError(
          ErrorCode.STAGE,
          `reading back the open transaction's rows from \`${path}\`: the file ends at byte ${entry.offset + done}, before byte ${entry.offset + entry.length}; something else truncated it — keep other programs out of the temporary directory and run again (the transaction was not committed)`,
          { path, offset: entry.offset + done },
        );
      }
      done += bytesRead;
    }
    return { payload: buf, count: entry.count };
  }

  /** Forgets everything (the transaction ended); the file is kept for the next one. */
  clear(): void {
    this.take();
    this.end = 0;
  }

  /** Deletes the temporary file. */
  async close(): Promise<void> {
    this.clear();
    const file = this.file;
    const dir = this.dir;
    this.file = undefined;
    this.dir = undefined;
    await file?.close().catch(() => {});
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }

  private async openFile(): Promise<FileHandle> {
    if (this.file !== undefined) return this.file;
    this.dir = await mkdtemp(join(tmpdir(), 'sluice-pg-held-'));
    this.file = await open(join(this.dir, 'transaction.copy'), 'w+');
    return this.file;
  }
}
