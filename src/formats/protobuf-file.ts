/**
 * The `protobuf` file format: length-delimited Protobuf messages, each an unsigned varint length
 * followed by that many bytes of one message (Java's `writeDelimitedTo`, Go's `protodelim`,
 * Python's `_VarintBytes` convention), of one message type from a FileDescriptorSet loaded at run
 * time — no generated code. Values are those of `src/formats/schema/protobuf.ts` (well-known
 * types as natural JSON values, 64-bit integers exact).
 *
 * A record's `line` is its 1-based message number and `offset` the byte offset of its length
 * prefix, so a saved position is a message boundary. A message whose bytes do not decode goes to
 * the dead letters (raw bytes as base64) and the next one is read; a length beyond
 * `maxMessageBytes` leaves no way to find the next message, so it and the rest of the input are
 * one dead letter.
 */
import { Buffer } from 'node:buffer';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { DecodeSink, DecodeStart, RecordDecoder, RecordEncoder } from './format.ts';
import { type ProtobufSchemas, protobufSchemas } from './schema/protobuf.ts';

/** Options of {@link protobufFileDecoder} and {@link protobufFileEncoder}. */
export interface ProtobufFileOptions {
  /** A FileDescriptorSet (`protoc --include_imports -o set.pb …`). */
  readonly descriptorSet: Uint8Array;
  /** Full name of the message type (default: the first message of the set's last file). */
  readonly messageType?: string | undefined;
}

/** Options of {@link protobufFileDecoder}. */
export interface ProtobufFileDecodeOptions extends ProtobufFileOptions {
  /** A restart: messages and bytes before the first byte given. */
  readonly start?: DecodeStart | undefined;
  /** Largest message accepted. Default 64 MiB. */
  readonly maxMessageBytes?: number | undefined;
  /** Bytes of a bad message its dead letter keeps (as base64). Default 4096. */
  readonly maxRawBytes?: number | undefined;
}

function schemasOf(options: ProtobufFileOptions): { schemas: ProtobufSchemas; type: string } {
  let schemas: ProtobufSchemas;
  let type: string;
  try {
    schemas = protobufSchemas({ descriptorSet: options.descriptorSet });
    type = options.messageType ?? schemas.typeName([0]);
    schemas.indexesOf(type);
  } catch (err) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `the Protobuf descriptor set cannot be used: ${(err as Error).message}`,
    );
  }
  return { schemas, type };
}

/** Reads an unsigned varint; undefined when `buf` ends inside it; -1 when longer than 10 bytes. */
function varint(buf: Uint8Array, pos: number): { value: number; next: number } | undefined {
  let n = 0;
  let mul = 1;
  for (let i = pos; i < buf.length && i - pos < 10; i++) {
    const b = buf[i] as number;
    n += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return { value: n, next: i + 1 };
    mul *= 128;
  }
  return buf.length - pos >= 10 ? { value: -1, next: pos + 10 } : undefined;
}

/**
 * A decoder of one length-delimited Protobuf file (see the module comment). Throws a
 * `SLUICE_CONFIG` error for a descriptor set that does not load or a type it lacks.
 *
 * @example
 * const d = protobufFileDecoder({ descriptorSet: readFileSync('set.pb'), messageType: 'shop.Order' });
 */
export function protobufFileDecoder(options: ProtobufFileDecodeOptions): RecordDecoder<unknown> {
  const { schemas, type } = schemasOf(options);
  const maxMessage = options.maxMessageBytes ?? 64 * 1024 * 1024;
  const maxRaw = options.maxRawBytes ?? 4096;
  let done: DecodeStart = options.start ?? { line: 0, offset: 0 };
  let rest: Buffer = Buffer.alloc(0);
  let base = done.offset;
  let line = done.line;
  let need = 0;
  let lost = false;
  const raw = (b: Uint8Array): Uint8Array =>
    Buffer.from(
      Buffer.from(b.buffer, b.byteOffset, Math.min(b.byteLength, maxRaw)).toString('base64'),
      'latin1',
    );
  const bad = (why: string, at: number, n: number): SluiceError =>
    new SluiceError(
      ErrorCode.PARSE,
      `Protobuf message ${n} (byte ${at}): ${why} (the dead letter's raw bytes are base64)`,
      {
        line: n,
        offset: at,
      },
    );

  const run = (sink: DecodeSink<unknown>): void => {
    let pos = 0;
    need = 0;
    while (pos < rest.length) {
      const at = base + pos;
      const len = varint(rest, pos);
      if (len === undefined) {
        need = rest.length - pos + 1;
        break;
      }
      if (len.value < 0 || len.value > maxMessage) {
        sink.invalid(
          bad(
            `its length ${len.value < 0 ? '(a varint over 10 bytes)' : len.value} is beyond the limit of ${maxMessage} bytes; the rest of the input cannot be framed and is skipped`,
            at,
            line + 1,
          ),
          raw(rest.subarray(pos)),
          line + 1,
          at,
        );
        lost = true;
        pos = rest.length;
        break;
      }
      const end = len.next + len.value;
      if (end > rest.length) {
        need = end - pos;
        break;
      }
      line++;
      let value: unknown;
      try {
        value = schemas.decode(rest.subarray(len.next, end), undefined, type);
      } catch (err) {
        sink.invalid(
          bad(`does not decode as \`${type}\`: ${(err as Error).message}`, at, line),
          raw(rest.subarray(len.next, end)),
          line,
          at,
        );
        pos = end;
        done = { line, offset: base + pos };
        continue;
      }
      sink.record(value, line, at);
      pos = end;
      done = { line, offset: base + pos };
    }
    rest = rest.subarray(pos);
    base += pos;
  };

  return {
    write(chunk, sink) {
      if (lost) return;
      const c = Buffer.isBuffer(chunk)
        ? chunk
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      rest = rest.length === 0 ? c : Buffer.concat([rest, c]);
      if (rest.length < need) return;
      run(sink);
    },
    end(sink) {
      if (lost || rest.length === 0) return;
      run(sink);
      if (rest.length > 0) {
        sink.invalid(
          bad(`the input ends inside it (${rest.length} bytes of it): it is truncated`, base, line + 1),
          raw(rest),
          line + 1,
          base,
        );
        base += rest.length;
        rest = Buffer.alloc(0);
        done = { line, offset: base };
      }
    },
    position() {
      return done;
    },
  };
}

/**
 * An encoder writing length-delimited Protobuf messages of one type. A record that does not fit
 * the type is rejected with a `SLUICE_RECORD` error naming the field.
 *
 * @example
 * protobufFileEncoder({ descriptorSet, messageType: 'shop.Order' }).encode([{ id: 1 }]);
 */
export function protobufFileEncoder(options: ProtobufFileOptions): RecordEncoder<unknown> {
  const { schemas, type } = schemasOf(options);
  return {
    encode(records, reject) {
      const out: Uint8Array[] = [];
      let total = 0;
      for (let i = 0; i < records.length; i++) {
        let body: Uint8Array;
        try {
          body = schemas.encode(records[i], type);
        } catch (err) {
          const error = new SluiceError(
            ErrorCode.RECORD,
            `the record does not fit Protobuf message \`${type}\`: ${(err as Error).message}`,
            { component: 'protobuf' },
            { cause: err },
          );
          if (reject === undefined) throw error;
          reject(i, error);
          continue;
        }
        const len: number[] = [];
        let v = body.length;
        while (v >= 0x80) {
          len.push((v & 0x7f) | 0x80);
          v >>>= 7;
        }
        len.push(v);
        out.push(Uint8Array.from(len), body);
        total += len.length + body.length;
      }
      return Buffer.concat(out, total);
    },
  };
}
