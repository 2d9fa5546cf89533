/**
 * The `insert` writer of the `postgres` sink: each written batch is encoded at once into COPY
 * text (no per-row object) and sent in `COPY … FROM STDIN`s of about `batchSize` rows (whole
 * batches). Only when the server rejects a row are rows made again from the COPY lines, to
 * isolate it (`isolate.ts`).
 */
import type { RecordMeta } from '../../core/message.ts';
import { copyLine, copyRecord } from './encode.ts';
import { type IsolationTarget, inSavepoint, isolate, writeIsolating } from './isolate.ts';
import {
  isolationTarget,
  isRowObject,
  payloadOf,
  type Row,
  type TableWriter,
  type TxChunk,
  type WriteTarget,
} from './rows.ts';

/**
 * One written batch, encoded at once into COPY text. No per-row object is made on the way.
 */
interface Segment {
  /**
   * The meta of the written batch's records. The records themselves are not kept: held until their
   * COPY is acknowledged, they would outlive young-generation collections (measured on a 5M-row
   * load: 6.1 s and 5.0 s of CPU with them, 5.4 s and 3.5 s without); a rejected row's dead letter
   * holds its COPY line as an object instead (`copyRecord`).
   */
  readonly meta: readonly (RecordMeta | undefined)[] | undefined;
  /** Indices in the batch of the encoded rows; undefined: all of them. */
  readonly indices: number[] | undefined;
  /** The rows' COPY text, as UTF-8 (each row's string dies young; the bytes are off the heap). */
  readonly bytes: Buffer;
  readonly count: number;
}

/** The {@link TableWriter} of `insert` mode; see the module comment. */
export class CopyWriter implements TableWriter {
  #segments: Segment[] = [];
  #rows = 0;
  /** Bytes reserved per row when a batch is encoded; learnt from the batches so far. */
  #bytesPerRow = 64;
  readonly #target: WriteTarget;
  readonly #isolation: IsolationTarget<Row>;
  readonly #batchSize: number;

  /** `batchSize`: rows per COPY (whole batches: a COPY may hold a little more). */
  constructor(target: WriteTarget, batchSize: number) {
    this.#target = target;
    this.#isolation = isolationTarget(target, 'insert');
    this.#batchSize = batchSize;
  }

  get buffered(): number {
    return this.#rows;
  }

  add(
    records: readonly unknown[],
    meta: readonly (RecordMeta | undefined)[] | undefined,
    notObject: (record: unknown, meta: RecordMeta | undefined) => void,
  ): void {
    const columns = this.#target.shape.columns;
    let bytes = Buffer.allocUnsafe(Math.max(4096, records.length * this.#bytesPerRow));
    let used = 0;
    let indices: number[] | undefined;
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      if (!isRowObject(record)) {
        notObject(record, meta?.[i]);
        if (indices === undefined) {
          indices = [];
          for (let j = 0; j < i; j++) indices.push(j);
        }
        continue;
      }
      const line = copyLine(record as Record<string, unknown>, columns);
      if (used + line.length * 3 > bytes.length) {
        const grown = Buffer.allocUnsafe(Math.max(bytes.length * 2, used + line.length * 3));
        bytes.copy(grown, 0, 0, used);
        bytes = grown;
      }
      used += bytes.write(line, used, 'utf8');
      indices?.push(i);
    }
    const count = indices === undefined ? records.length : indices.length;
    if (count === 0) return;
    // Next time, start with room for rows this long (a little more, so growing is rare).
    this.#bytesPerRow = Math.max(this.#bytesPerRow, Math.ceil((used / count) * 1.25));
    this.#segments.push({ meta, indices, bytes: bytes.subarray(0, used), count });
    this.#rows += count;
  }

  takeChunks(): (() => Promise<TxChunk>)[] {
    const all = this.#segments;
    this.#segments = [];
    this.#rows = 0;
    const out: (() => Promise<TxChunk>)[] = [];
    let i = 0;
    while (i < all.length) {
      const chunk: Segment[] = [];
      let n = 0;
      while (i < all.length && n < this.#batchSize) {
        const seg = all[i++] as Segment;
        chunk.push(seg);
        n += seg.count;
      }
      out.push(() => this.#writeSegments(chunk, n));
    }
    return out;
  }

  /**
   * Sends the chunk's COPY bytes as they were. A row the database rejects now (a unique key
   * another writer took meanwhile) is isolated as usual; its dead letter then holds the row as
   * sent ({@link copyRecord}: the record itself is not kept, to keep the open transaction compact).
   */
  async resend(chunk: TxChunk): Promise<TxChunk> {
    const payload = chunk.payload;
    if (payload === undefined) return chunk;
    const target = this.#isolation;
    const err = await inSavepoint(target, () => target.write([], payload));
    if (err === undefined) return chunk;
    const rows: Row[] = [];
    for (const line of payload.toString('utf8').split('\n')) {
      if (line !== '')
        rows.push({
          record: copyRecord(line, this.#target.shape.columns),
          meta: undefined,
          line: `${line}\n`,
        });
    }
    const again = payloadOf(rows);
    const ok = await writeIsolating(target, rows, { failures: 0 }, again);
    return { payload: ok === rows ? again : payloadOf(ok), count: ok.length };
  }

  /**
   * One COPY of `segs` inside a savepoint. On a rejected row, the rows are made (from the COPY
   * lines) and isolated: the one the error names is rejected, the others are written again.
   */
  async #writeSegments(segs: readonly Segment[], count: number): Promise<TxChunk> {
    const payload = segs.length === 1 ? (segs[0] as Segment).bytes : Buffer.concat(segs.map((x) => x.bytes));
    const target = this.#isolation;
    const err = await inSavepoint(target, () => target.write([], payload));
    if (err === undefined) return { payload, count };
    const columns = this.#target.shape.columns;
    const rows: Row[] = [];
    for (const seg of segs) {
      // COPY text escapes newlines inside values, so every newline ends a row.
      const text = seg.bytes.toString('utf8');
      let k = 0;
      for (let start = 0; start < text.length; k++) {
        const end = text.indexOf('\n', start) + 1 || text.length;
        const line = text.slice(start, end);
        start = end;
        const i = seg.indices === undefined ? k : (seg.indices[k] as number);
        rows.push({ record: copyRecord(line, columns), meta: seg.meta?.[i], line });
      }
    }
    const ok = await isolate(target, rows, err, { failures: 1 });
    return { payload: payloadOf(ok), count: ok.length };
  }
}
