/**
 * Incremental, synchronous codecs for the two framed formats: snappy framing
 * (https://github.com/google/snappy/blob/main/framing_format.txt) and the LZ4 frame format
 * (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md). The native packages compress and
 * decompress blocks; the framing is parsed here.
 *
 * Why frame here and not with the packages' own framed APIs: `lz4-napi` only has whole-buffer
 * frame functions (no streaming); `snappy`'s streaming `Decompressor` runs a worker thread per
 * stream and reports no position. Parsing the frames ourselves streams in bounded memory (one
 * block, ≤ 4 MiB for LZ4 and 64 KiB for snappy), verifies every checksum, and names the exact
 * compressed byte offset of a corrupt or truncated frame. Interoperability with the packages'
 * framed output and with the `lz4` CLI is tested.
 */
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import { maskedCrc32c, Xxh32, xxh32 } from './checksums.ts';

const require = createRequire(import.meta.url);
interface Snappy {
  compressSync(b: Uint8Array): Buffer;
  uncompressSync(b: Uint8Array, o?: { asBuffer?: boolean }): Buffer | string;
}
interface Lz4 {
  compressFrameSync(b: Buffer, o?: { contentChecksum?: boolean; blockChecksums?: boolean }): Buffer;
  uncompressSync(b: Uint8Array, dict?: Uint8Array): Buffer;
}
// The native addons load on first use: mapping them costs every run resident memory (their code
// and data pages), and most runs read and write no snappy or LZ4.
let snappyModule: Snappy | undefined;
let lz4Module: Lz4 | undefined;
const snappy = (): Snappy => {
  snappyModule ??= require('snappy') as Snappy;
  return snappyModule;
};
const lz4 = (): Lz4 => {
  lz4Module ??= require('lz4-napi') as Lz4;
  return lz4Module;
};

/** A synchronous streaming codec: bytes in, bytes out, errors carry the input offset. */
export interface SyncCodec {
  /** Feeds `chunk`; returns the output it completes (possibly none). Throws a `SluiceError` on bad input. */
  push(chunk: Uint8Array): Uint8Array[];
  /** End of input: returns the rest; throws when the input stopped mid-frame. */
  end(): Uint8Array[];
}

function corrupt(codec: string, offset: number, what: string): SluiceError {
  return new SluiceError(
    ErrorCode.STAGE,
    `decompressing ${codec}: corrupt input at compressed byte ${offset}: ${what}`,
    {
      component: 'compression',
      codec,
      offset,
    },
  );
}

function truncated(codec: string, offset: number, what: string): SluiceError {
  return new SluiceError(
    ErrorCode.STAGE,
    `decompressing ${codec}: input ends at compressed byte ${offset} in the middle of ${what}; the file is truncated`,
    { component: 'compression', codec, offset },
  );
}

/** Unconsumed input of a frame parser: the tail of the last chunk plus the new chunk. */
class Input {
  buf: Buffer = Buffer.alloc(0);
  /** Absolute offset of `buf[0]`. */
  base = 0;
  pos = 0;

  add(chunk: Uint8Array): void {
    const rest = this.buf.subarray(this.pos);
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.base += this.pos;
    this.buf = rest.length === 0 ? c : Buffer.concat([rest, c]);
    this.pos = 0;
  }

  get available(): number {
    return this.buf.length - this.pos;
  }

  get offset(): number {
    return this.base + this.pos;
  }
}

const SNAPPY_ID = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]);
const SNAPPY_BLOCK = 65536;

/**
 * Snappy framing-format decoder: checks the stream identifier, the masked CRC-32C of every data
 * chunk and the 64 KiB chunk limit; skips padding and skippable chunks.
 */
export class SnappyFrameDecoder implements SyncCodec {
  private readonly in = new Input();
  private sawId = false;

  /** {@inheritDoc SyncCodec.push} */
  push(chunk: Uint8Array): Uint8Array[] {
    this.in.add(chunk);
    const out: Uint8Array[] = [];
    const inp = this.in;
    while (inp.available >= 4) {
      const b = inp.buf;
      const p = inp.pos;
      const type = b[p]!;
      if (!this.sawId && type !== 0xff)
        throw corrupt('snappy', inp.offset, 'missing stream identifier (not snappy framed data?)');
      const len = b[p + 1]! | (b[p + 2]! << 8) | (b[p + 3]! << 16);
      if (inp.available < 4 + len) break;
      const at = inp.offset;
      const body = b.subarray(p + 4, p + 4 + len);
      if (type === 0xff) {
        if (!SNAPPY_ID.equals(b.subarray(p, p + 10))) throw corrupt('snappy', at, 'bad stream identifier');
        this.sawId = true;
      } else if (type === 0x00 || type === 0x01) {
        if (len < 4) throw corrupt('snappy', at, 'data chunk shorter than its checksum');
        const crc = body.readUInt32LE(0);
        let data: Buffer;
        if (type === 0x01) {
          data = Buffer.from(body.subarray(4));
        } else {
          try {
            data = snappy().uncompressSync(body.subarray(4), { asBuffer: true }) as Buffer;
          } catch (err) {
            throw corrupt('snappy', at, (err as Error).message);
          }
        }
        if (data.length > SNAPPY_BLOCK) throw corrupt('snappy', at, 'chunk decompresses to more than 64 KiB');
        if (maskedCrc32c(data) !== crc) throw corrupt('snappy', at, 'CRC-32C mismatch');
        out.push(data);
      } else if (type <= 0x7f) {
        throw corrupt('snappy', at, `reserved unskippable chunk type 0x${type.toString(16)}`);
      }
      // 0x80–0xfe: padding and skippable chunks.
      inp.pos = p + 4 + len;
    }
    return out;
  }

  /** {@inheritDoc SyncCodec.end} */
  end(): Uint8Array[] {
    if (this.in.available > 0) throw truncated('snappy', this.in.base + this.in.buf.length, 'a chunk');
    return [];
  }
}

/** Snappy framing-format encoder: 64 KiB chunks, each compressed unless that does not pay. */
export class SnappyFrameEncoder implements SyncCodec {
  private started = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** {@inheritDoc SyncCodec.push} */
  push(chunk: Uint8Array): Uint8Array[] {
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < SNAPPY_BLOCK) return this.head();
    const all = Buffer.concat(this.pending, this.pendingBytes);
    const whole = all.length - (all.length % SNAPPY_BLOCK);
    const out = this.head();
    for (let i = 0; i < whole; i += SNAPPY_BLOCK) out.push(this.frame(all.subarray(i, i + SNAPPY_BLOCK)));
    const rest = all.subarray(whole);
    this.pending = rest.length > 0 ? [Buffer.from(rest)] : [];
    this.pendingBytes = rest.length;
    return out;
  }

  /** {@inheritDoc SyncCodec.end} */
  end(): Uint8Array[] {
    const out = this.head();
    if (this.pendingBytes > 0) out.push(this.frame(Buffer.concat(this.pending, this.pendingBytes)));
    this.pending = [];
    this.pendingBytes = 0;
    return out;
  }

  private head(): Uint8Array[] {
    if (this.started) return [];
    this.started = true;
    return [SNAPPY_ID];
  }

  private frame(data: Buffer): Buffer {
    const crc = maskedCrc32c(data);
    const c = snappy().compressSync(data);
    const raw = c.length >= data.length - (data.length >>> 3);
    const body = raw ? data : c;
    const out = Buffer.allocUnsafe(8 + body.length);
    out[0] = raw ? 0x01 : 0x00;
    out.writeUIntLE(4 + body.length, 1, 3);
    out.writeUInt32LE(crc, 4);
    body.copy(out, 8);
    return out;
  }
}

const LZ4_MAGIC = 0x184d2204;
const BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

/** LZ4 frame-format decoder: any number of frames (and skippable frames), linked or independent blocks. */
export class Lz4FrameDecoder implements SyncCodec {
  private readonly in = new Input();
  /** 0: expecting a frame magic; 1: frame header; 2: block size; 3: content checksum. */
  private state = 0;
  private frameAt = 0;
  private blockMax = 0;
  private linked = false;
  private blockChecksum = false;
  private contentChecksum = false;
  private hash: Xxh32 | undefined;
  /** Last 64 KiB of output, the dictionary of a linked block. */
  private window: Buffer = Buffer.alloc(0);
  private sizePrefix = Buffer.alloc(4);

  /** {@inheritDoc SyncCodec.push} */
  push(chunk: Uint8Array): Uint8Array[] {
    this.in.add(chunk);
    const out: Uint8Array[] = [];
    const inp = this.in;
    for (;;) {
      const b = inp.buf;
      const p = inp.pos;
      const avail = inp.available;
      if (this.state === 0) {
        if (avail < 4) break;
        const magic = b.readUInt32LE(p);
        if ((magic & 0xfffffff0) === 0x184d2a50) {
          if (avail < 8) break;
          const size = b.readUInt32LE(p + 4);
          if (avail < 8 + size) break;
          inp.pos = p + 8 + size;
          continue;
        }
        if (magic !== LZ4_MAGIC) throw corrupt('lz4', inp.offset, 'bad frame magic (not LZ4 frame data?)');
        this.frameAt = inp.offset;
        this.state = 1;
        inp.pos = p + 4;
        continue;
      }
      if (this.state === 1) {
        if (avail < 2) break;
        const flg = b[p]!;
        const bd = b[p + 1]!;
        const len = 3 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
        if (avail < len) break;
        if (flg >>> 6 !== 1) throw corrupt('lz4', inp.offset, `unsupported frame version ${flg >>> 6}`);
        if (flg & 0x02 || bd & 0x8f)
          throw corrupt('lz4', inp.offset, 'reserved bits set in the frame descriptor');
        if (flg & 0x01) throw corrupt('lz4', inp.offset, 'frames with a dictionary id are not supported');
        const hc = b[p + len - 1]!;
        if (((xxh32(b.subarray(p, p + len - 1)) >>> 8) & 0xff) !== hc)
          throw corrupt('lz4', inp.offset, 'frame header checksum mismatch');
        this.blockMax = BLOCK_MAX[(bd >>> 4) & 7]!;
        if (this.blockMax === 0) throw corrupt('lz4', inp.offset, 'invalid block maximum size');
        this.linked = (flg & 0x20) === 0;
        this.blockChecksum = (flg & 0x10) !== 0;
        this.contentChecksum = (flg & 0x04) !== 0;
        this.hash = this.contentChecksum ? new Xxh32() : undefined;
        this.window = Buffer.alloc(0);
        this.sizePrefix.writeUInt32LE(this.blockMax, 0);
        this.state = 2;
        inp.pos = p + len;
        continue;
      }
      if (this.state === 2) {
        if (avail < 4) break;
        const word = b.readUInt32LE(p);
        if (word === 0) {
          this.state = this.contentChecksum ? 3 : 0;
          inp.pos = p + 4;
          continue;
        }
        const size = word & 0x7fffffff;
        const stored = word >>> 31 === 1;
        if (size > this.blockMax)
          throw corrupt('lz4', inp.offset, `block of ${size} bytes exceeds the frame's ${this.blockMax}`);
        const need = 4 + size + (this.blockChecksum ? 4 : 0);
        if (avail < need) break;
        const at = inp.offset;
        const data = b.subarray(p + 4, p + 4 + size);
        if (this.blockChecksum && xxh32(data) !== b.readUInt32LE(p + 4 + size))
          throw corrupt('lz4', at, 'block checksum mismatch');
        let block: Buffer;
        if (stored) {
          block = Buffer.from(data);
        } else {
          // lz4-napi's `uncompressSync` reads lz4_flex's size-prefixed block; the prefix is the
          // output capacity, so the frame's block maximum bounds what a corrupt block can claim.
          const prefixed = Buffer.concat([this.sizePrefix, data]);
          try {
            block =
              this.linked && this.window.length > 0
                ? lz4().uncompressSync(prefixed, this.window)
                : lz4().uncompressSync(prefixed);
          } catch (err) {
            throw corrupt('lz4', at, (err as Error).message);
          }
        }
        this.hash?.update(block);
        if (this.linked) {
          const w =
            this.window.length + block.length <= 65536
              ? Buffer.concat([this.window, block])
              : Buffer.concat([this.window, block]).subarray(-65536);
          this.window = Buffer.from(w);
        }
        out.push(block);
        inp.pos = p + need;
        continue;
      }
      // state 3: content checksum
      if (avail < 4) break;
      if (this.hash!.digest() !== b.readUInt32LE(p))
        throw corrupt('lz4', inp.offset, 'content checksum mismatch');
      this.state = 0;
      inp.pos = p + 4;
    }
    return out;
  }

  /** {@inheritDoc SyncCodec.end} */
  end(): Uint8Array[] {
    if (this.state !== 0 || this.in.available > 0) {
      throw truncated(
        'lz4',
        this.in.base + this.in.buf.length,
        `the frame that starts at byte ${this.frameAt}`,
      );
    }
    return [];
  }
}

/**
 * LZ4 frame encoder: input is cut into 1 MiB pieces, each compressed by `lz4-napi` into its own
 * frame with a content checksum. Concatenated frames are a valid LZ4 stream (the `lz4` CLI and
 * every frame decoder read them), and each piece is compressed off nothing but itself, so memory
 * stays bounded.
 */
export class Lz4FrameEncoder implements SyncCodec {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private static readonly PIECE = 1 << 20;

  /** {@inheritDoc SyncCodec.push} */
  push(chunk: Uint8Array): Uint8Array[] {
    this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < Lz4FrameEncoder.PIECE) return [];
    return this.flush();
  }

  /** {@inheritDoc SyncCodec.end} */
  end(): Uint8Array[] {
    return this.pendingBytes > 0 ? this.flush() : [];
  }

  private flush(): Uint8Array[] {
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return [lz4().compressFrameSync(all, { contentChecksum: true })];
  }
}
