/**
 * The header of an Avro object container file (Avro 1.11 spec, "Object Container Files"): the
 * magic `Obj\x01`, a metadata map (`avro.schema`, `avro.codec`, user keys) and a 16-byte sync
 * marker that also ends every block. Parsed incrementally (undefined until enough bytes are in),
 * and written for a new file.
 */
import { Buffer } from 'node:buffer';

/** The first four bytes of every object container file. */
export const AVRO_MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]);

/** Bytes of the sync marker. */
export const SYNC_BYTES = 16;

/** A header read from a file. */
export interface AvroFileHeader {
  /** The writer schema (JSON text) of every record in the file. */
  readonly schema: string;
  /** `null`, `deflate`, `snappy`, `zstandard`… (`null` when the file names none). */
  readonly codec: string;
  readonly sync: Buffer;
  /** Bytes the header takes: the first block starts here. */
  readonly length: number;
}

/**
 * Reads an Avro `long` (zig-zag varint) at `pos`; undefined when `buf` ends inside it. Values
 * beyond ±2^53 lose precision, which no count or size in a sane file reaches.
 */
export function readLong(buf: Uint8Array, pos: number): { value: number; next: number } | undefined {
  let n = 0;
  let mul = 1;
  for (let i = pos; i < buf.length; i++) {
    const b = buf[i] as number;
    n += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return { value: n % 2 === 0 ? n / 2 : -(n + 1) / 2, next: i + 1 };
    mul *= 128;
    if (i - pos >= 9) throw new Error(`a varint at byte ${pos} is longer than 10 bytes`);
  }
  return undefined;
}

/** The zig-zag varint bytes of `n` (a safe integer). */
export function longBytes(n: number): number[] {
  let v = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/**
 * Parses the header at the start of `buf`; undefined while `buf` ends inside it. Throws an Error
 * saying what is wrong when `buf` does not start like a container file or the map is damaged.
 */
export function parseHeader(buf: Buffer): AvroFileHeader | undefined {
  const magic = Math.min(buf.length, 4);
  if (!buf.subarray(0, magic).equals(AVRO_MAGIC.subarray(0, magic)))
    throw new Error(
      `not an Avro object container file: it starts with bytes ${buf.subarray(0, 4).toString('hex')}, not \`Obj\\x01\` (4f626a01)`,
    );
  if (buf.length < 4) return undefined;
  let pos = 4;
  const meta = new Map<string, Buffer>();
  const bytesAt = (): { value: Buffer; next: number } | undefined => {
    const len = readLong(buf, pos);
    if (len === undefined) return undefined;
    if (len.value < 0)
      throw new Error(`a negative length ${len.value} in the header's metadata at byte ${pos}`);
    if (len.next + len.value > buf.length) return undefined;
    return { value: buf.subarray(len.next, len.next + len.value), next: len.next + len.value };
  };
  for (;;) {
    const count = readLong(buf, pos);
    if (count === undefined) return undefined;
    pos = count.next;
    if (count.value === 0) break;
    let items = count.value;
    if (items < 0) {
      // A negative count is followed by the block's size in bytes.
      items = -items;
      const size = readLong(buf, pos);
      if (size === undefined) return undefined;
      pos = size.next;
    }
    for (let i = 0; i < items; i++) {
      const k = bytesAt();
      if (k === undefined) return undefined;
      pos = k.next;
      const v = bytesAt();
      if (v === undefined) return undefined;
      pos = v.next;
      meta.set(k.value.toString('utf8'), v.value);
    }
  }
  if (buf.length < pos + SYNC_BYTES) return undefined;
  const schema = meta.get('avro.schema');
  if (schema === undefined) throw new Error('the header has no `avro.schema`');
  return {
    schema: schema.toString('utf8'),
    codec: meta.get('avro.codec')?.toString('utf8') || 'null',
    sync: Buffer.from(buf.subarray(pos, pos + SYNC_BYTES)),
    length: pos + SYNC_BYTES,
  };
}

/** The header bytes of a new file with `schema` (JSON text), `codec` and `sync`. */
export function writeHeader(schema: string, codec: string, sync: Uint8Array): Buffer {
  const entry = (k: string, v: string): Buffer[] => {
    const kb = Buffer.from(k, 'utf8');
    const vb = Buffer.from(v, 'utf8');
    return [Buffer.from(longBytes(kb.length)), kb, Buffer.from(longBytes(vb.length)), vb];
  };
  return Buffer.concat([
    AVRO_MAGIC,
    Buffer.from(longBytes(2)),
    ...entry('avro.schema', schema),
    ...entry('avro.codec', codec),
    Buffer.from([0]),
    sync,
  ]);
}
