/**
 * The `avro` file format's reader: an Avro object container file, read incrementally, to records.
 *
 * The writer schema comes from the file's header; with a reader schema, every record is resolved
 * against it (added fields with defaults, removed fields, promoted types, aliases — Avro schema
 * evolution), so files written with older versions read in one shape. Values are those of
 * `src/formats/schema/avro.ts` (exact longs, decimals as exact strings, timestamps as ISO text).
 *
 * Positions: a record's `offset` is the byte offset of its block and its `line` its 1-based
 * index in that block, so a saved {@link RecordDecoder.position} — `line` records of the block at
 * `offset` done — is a block boundary to seek to plus records to skip: a restart neither loses nor
 * repeats a record. A resumed decoder is given the header (read again from the top, see
 * {@link readAvroHeader}).
 *
 * Damage: a block whose data does not decompress or decode, or whose sync marker does not match,
 * goes to the dead letters as one invalid record (its raw bytes as base64, at most `maxRawBytes`
 * of them; `line` 0, `offset` the block's) and reading goes on: with the next block when the block
 * was framed right, else from the next sync marker found in the bytes. A block followed by a
 * damaged marker whose data still decodes to exactly its record count loses nothing: its records
 * are read, the marker alone is a dead letter, and reading goes on after it. A file that does not start
 * like a container file, or whose writer schema the reader schema cannot read, fails the run.
 */
import { Buffer } from 'node:buffer';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { DecodeSink, DecodeStart, RecordDecoder } from '../format.ts';
import { type avro, avroType } from '../schema/avro.ts';
import { type AvroCodec, decompressBlock, isAvroCodec, unsupportedCodec } from './codecs.ts';
import { type AvroFileHeader, parseHeader, readLong, SYNC_BYTES } from './header.ts';

/** Options of {@link avroFileDecoder}. */
export interface AvroFileDecodeOptions {
  /** The reader schema (Avro JSON text) every record is resolved against; default: the file's. */
  readonly readerSchema?: string | undefined;
  /** A restart: where the bytes given start (see the module comment). Needs `avroHeader`. */
  readonly start?: DecodeStart | undefined;
  /** The file's header, when the bytes given start after it (a restart). */
  readonly avroHeader?: AvroFileHeader | undefined;
  /** Largest block accepted, in bytes (compressed). Default 64 MiB: a larger size is damage. */
  readonly maxBlockBytes?: number | undefined;
  /** Bytes of a damaged block its dead letter keeps (as base64). Default 4096. */
  readonly maxRawBytes?: number | undefined;
}

const DEFAULT_MAX_BLOCK = 64 * 1024 * 1024;
/** No real header comes near this (schemas of thousands of fields are a few hundred KiB). */
const MAX_HEADER = 16 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/** Chunks not consumed yet, joined only when a whole block (or header) is in. */
class Pending {
  private parts: Buffer[] = [];
  /** Bytes held. */
  length = 0;
  /** Offset in the whole input of the first byte held. */
  base = 0;

  add(chunk: Uint8Array): void {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (b.length === 0) return;
    this.parts.push(b);
    this.length += b.length;
  }

  all(): Buffer {
    if (this.parts.length > 1) this.parts = [Buffer.concat(this.parts, this.length)];
    return this.parts[0] ?? EMPTY;
  }

  consume(n: number): void {
    if (n === 0) return;
    const b = this.all();
    this.parts = n >= b.length ? [] : [b.subarray(n)];
    this.length -= n;
    this.base += n;
  }
}

/** The header of an Avro container file from the start of `bytes` (for a restart). */
export async function readAvroHeader(bytes: AsyncIterable<Uint8Array>): Promise<AvroFileHeader> {
  const p = new Pending();
  for await (const chunk of bytes) {
    p.add(chunk);
    const h = header(p.all());
    if (h !== undefined) return h;
  }
  throw fatal('the file ends inside its Avro header', 0);
}

function fatal(message: string, offset: number): SluiceError {
  return new SluiceError(ErrorCode.STAGE, message, { offset });
}

function header(buf: Buffer): AvroFileHeader | undefined {
  let h: AvroFileHeader | undefined;
  try {
    h = parseHeader(buf);
  } catch (err) {
    throw fatal(`reading the Avro header: ${(err as Error).message}`, 0);
  }
  if (h === undefined && buf.length > MAX_HEADER)
    throw fatal(`the Avro header is longer than ${MAX_HEADER} bytes; the file is damaged`, 0);
  return h;
}

/**
 * A decoder of one Avro object container file (see the module comment).
 *
 * @example
 * const d = avroFileDecoder({ readerSchema: '{"type":"record","name":"P","fields":[…]}' });
 * d.write(bytes, sink); d.end(sink);
 */
export function avroFileDecoder(options: AvroFileDecodeOptions = {}): RecordDecoder<unknown> {
  return new AvroFileDecoder(options);
}

class AvroFileDecoder implements RecordDecoder<unknown> {
  private readonly input = new Pending();
  private readonly maxBlock: number;
  private readonly maxRaw: number;
  private readonly readerSchema: string | undefined;
  private state: 'header' | 'blocks' | 'resync' = 'header';
  private codec: AvroCodec = 'null';
  private sync: Buffer = EMPTY;
  private type: avro.Type | undefined;
  private resolver: avro.Resolver | undefined;
  /** 1-based number of the next block, undefined after a restart (blocks before are not counted). */
  private blockNo: number | undefined;
  /** Records of the next block already emitted before a restart. */
  private skip = 0;
  /** Bytes needed before the next step can run (no join of chunks until then). */
  private need = 0;
  private done: DecodeStart;
  /** A damaged stretch being skipped: where it starts, why, and its first bytes. */
  private damage: { at: number; block: number | undefined; why: string; raw: Buffer } | undefined;

  constructor(options: AvroFileDecodeOptions) {
    this.maxBlock = options.maxBlockBytes ?? DEFAULT_MAX_BLOCK;
    this.maxRaw = options.maxRawBytes ?? 4096;
    this.readerSchema = options.readerSchema;
    this.done = options.start ?? { line: 0, offset: 0 };
    if (options.start !== undefined && options.start.offset > 0) {
      if (options.avroHeader === undefined)
        throw new SluiceError(ErrorCode.STAGE, 'resuming an Avro file needs its header');
      this.useHeader(options.avroHeader);
      this.input.base = options.start.offset;
      this.skip = options.start.line;
      this.blockNo = undefined;
      this.state = 'blocks';
    }
  }

  position(): DecodeStart {
    return this.done;
  }

  write(chunk: Uint8Array, sink: DecodeSink<unknown>): void {
    this.input.add(chunk);
    if (this.input.length < this.need) return;
    this.run(sink);
  }

  end(sink: DecodeSink<unknown>): void {
    this.run(sink);
    const left = this.input.length;
    const at = this.input.base;
    if (this.state === 'header')
      throw fatal(
        left === 0
          ? 'the file is empty: an Avro container file starts with a header'
          : 'the file ends inside its Avro header',
        0,
      );
    if (this.state === 'resync') {
      this.report(sink);
    } else if (left > 0) {
      const buf = this.input.all();
      sink.invalid(
        this.blockError(
          at,
          this.blockNo,
          `the file ends inside this block (${left} bytes of it): it is truncated`,
        ),
        this.raw(buf),
        0,
        at,
      );
    }
    this.input.consume(this.input.length);
    this.done = { line: 0, offset: this.input.base };
  }

  private useHeader(h: AvroFileHeader): void {
    if (!isAvroCodec(h.codec)) throw fatal(unsupportedCodec(h.codec).message, 0);
    this.codec = h.codec;
    this.sync = h.sync;
    let writer: avro.Type;
    try {
      writer = avroType(h.schema);
    } catch (err) {
      throw fatal(`the file's writer schema is not a valid Avro schema: ${(err as Error).message}`, 0);
    }
    if (this.readerSchema === undefined) {
      this.type = writer;
      return;
    }
    const reader = avroType(this.readerSchema);
    try {
      this.resolver = reader.createResolver(writer);
    } catch (err) {
      throw new SluiceError(
        ErrorCode.STAGE,
        `the file's writer schema cannot be read with the reader schema: ${(err as Error).message}`,
        { offset: 0 },
      );
    }
    this.type = reader;
  }

  private raw(bytes: Uint8Array): Uint8Array {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, this.maxRaw));
    return Buffer.from(b.toString('base64'), 'latin1');
  }

  private blockError(at: number, block: number | undefined, why: string): SluiceError {
    const name = block === undefined ? `the Avro block at byte ${at}` : `Avro block ${block} (byte ${at})`;
    return new SluiceError(
      ErrorCode.PARSE,
      `${name}: ${why}; its records are skipped (the dead letter's raw bytes are base64)`,
      block === undefined ? { offset: at, line: 0 } : { offset: at, line: 0, block },
    );
  }

  /** Dead-letters the damaged stretch being skipped (its end was found, or the input ended). */
  private report(sink: DecodeSink<unknown>): void {
    const d = this.damage;
    if (d === undefined) return;
    this.damage = undefined;
    sink.invalid(this.blockError(d.at, d.block, d.why), this.raw(d.raw), 0, d.at);
  }

  private run(sink: DecodeSink<unknown>): void {
    const input = this.input;
    const buf = input.all();
    const base = input.base;
    let pos = 0;
    this.need = 0;
    for (;;) {
      if (this.state === 'header') {
        const h = header(buf);
        if (h === undefined) {
          this.need = buf.length + 1;
          break;
        }
        this.useHeader(h);
        pos = h.length;
        this.blockNo = 1;
        this.done = { line: 0, offset: base + pos };
        this.state = 'blocks';
        continue;
      }
      if (this.state === 'resync') {
        const i = buf.indexOf(this.sync, pos);
        if (i === -1) {
          // Keep the bytes that may begin a marker cut by the chunk's end.
          pos = Math.max(pos, buf.length - (SYNC_BYTES - 1));
          this.need = buf.length - pos + 1;
          break;
        }
        this.report(sink);
        pos = i + SYNC_BYTES;
        this.done = { line: 0, offset: base + pos };
        this.state = 'blocks';
        continue;
      }
      if (pos >= buf.length) break;
      const at = base + pos;
      let count: ReturnType<typeof readLong>;
      let size: ReturnType<typeof readLong>;
      let bad: string | undefined;
      try {
        count = readLong(buf, pos);
        size = count === undefined ? undefined : readLong(buf, count.next);
      } catch (err) {
        bad = (err as Error).message;
      }
      if (bad === undefined && (count === undefined || size === undefined)) {
        this.need = buf.length - pos + 1;
        break;
      }
      if (bad === undefined && count !== undefined && size !== undefined) {
        if (count.value < 0 || size.value < 0 || size.value > this.maxBlock)
          bad = `its header declares ${count.value} records in ${size.value} bytes (the limit is ${this.maxBlock})`;
        else {
          const end = size.next + size.value;
          if (buf.length < end + SYNC_BYTES) {
            this.need = end + SYNC_BYTES - pos;
            break;
          }
          if (buf.compare(this.sync, 0, SYNC_BYTES, end, end + SYNC_BYTES) !== 0) {
            // Either the count or size is damaged (then the data will not decode to exactly
            // `count` records) or only the marker is: then the block's records are good, and
            // the next block starts right after the damaged marker — resyncing would skip it.
            const data = buf.subarray(size.next, end);
            if (
              this.markerOnly(sink, at, count.value, data, buf.subarray(end, end + SYNC_BYTES), base + end)
            ) {
              pos = end + SYNC_BYTES;
              this.done = { line: 0, offset: base + pos };
              continue;
            }
            bad = 'its sync marker does not match the header’s (a damaged record count or size)';
          } else {
            this.block(sink, at, count.value, buf.subarray(size.next, end));
            pos = end + SYNC_BYTES;
            this.done = { line: 0, offset: base + pos };
            continue;
          }
        }
      }
      // Damaged framing: skip to the next sync marker.
      this.damage = {
        at,
        block: this.blockNo,
        why: `${bad}; skipped up to the next sync marker`,
        raw: Buffer.from(buf.subarray(pos, pos + this.maxRaw)),
      };
      if (this.blockNo !== undefined) this.blockNo++;
      this.skip = 0;
      this.state = 'resync';
      pos++;
    }
    input.consume(pos);
  }

  /** Decodes one well-framed block and hands on its records, or dead-letters it whole. */
  private block(sink: DecodeSink<unknown>, at: number, count: number, data: Buffer): void {
    const records = this.decodeBlock(count, data);
    if (typeof records === 'string') {
      const blockNo = this.blockNo;
      if (this.blockNo !== undefined) this.blockNo++;
      this.skip = 0;
      sink.invalid(this.blockError(at, blockNo, records), this.raw(data), 0, at);
      return;
    }
    this.handOn(sink, at, records);
  }

  /** Hands on a decoded block's records (after those a resumed run already did); its number. */
  private handOn(sink: DecodeSink<unknown>, at: number, records: unknown[]): number | undefined {
    const blockNo = this.blockNo;
    if (this.blockNo !== undefined) this.blockNo++;
    const skip = this.skip;
    this.skip = 0;
    for (let i = skip; i < records.length; i++) sink.record(records[i], i + 1, at);
    return blockNo;
  }

  /**
   * A block framed right but followed by a wrong sync marker: when its data decodes to exactly
   * its `count` records, only the marker is damaged — the records are handed on, the marker is
   * one dead letter (its 16 bytes) and reading goes on right after it. Otherwise (false) nothing
   * is handed on and the caller resyncs.
   */
  private markerOnly(
    sink: DecodeSink<unknown>,
    at: number,
    count: number,
    data: Buffer,
    marker: Buffer,
    markerAt: number,
  ): boolean {
    const records = this.decodeBlock(count, data);
    if (typeof records === 'string') return false;
    const blockNo = this.handOn(sink, at, records);
    const name =
      blockNo === undefined ? `the Avro block at byte ${at}` : `Avro block ${blockNo} (byte ${at})`;
    sink.invalid(
      new SluiceError(
        ErrorCode.PARSE,
        `${name}: the sync marker after it is damaged; its ${count} records decoded exactly and were read, reading goes on after the marker (the dead letter's raw bytes are the marker, base64)`,
        blockNo === undefined ? { offset: markerAt, line: 0 } : { offset: markerAt, line: 0, block: blockNo },
      ),
      this.raw(marker),
      0,
      markerAt,
    );
    return true;
  }

  /** The `count` records of a block's data, or why they cannot be read. */
  private decodeBlock(count: number, data: Buffer): unknown[] | string {
    const type = this.type as avro.Type;
    const resolver = this.resolver;
    const records: unknown[] = new Array(count);
    try {
      const bytes = decompressBlock(this.codec, data);
      let p = 0;
      for (let i = 0; i < count; i++) {
        const r = type.decode(bytes, p, resolver);
        if (r.offset < 0) return `its data ends inside record ${i + 1} of ${count}`;
        records[i] = r.value;
        p = r.offset;
      }
      if (p !== bytes.length) return `${bytes.length - p} bytes are left after its ${count} records`;
    } catch (err) {
      return (err as Error).message;
    }
    return records;
  }
}
