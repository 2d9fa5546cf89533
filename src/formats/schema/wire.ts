/**
 * The Confluent wire format every registry-aware serializer writes: magic byte 0, the schema id
 * as a 4-byte big-endian integer, then (Protobuf only) the message indexes — the path from the
 * file's top-level messages to the message type, as a zig-zag varint count and zig-zag varint
 * indexes, where the common `[0]` is written as the single byte 0 — then the payload.
 */

/** Why framed bytes could not be read; the caller dead-letters the message with it. */
export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
}

/** A framed message cut into its parts (`payload` is a view of the input). */
export interface Framed {
  readonly schemaId: number;
  /** Protobuf message indexes (`[0]`: the file's first message); undefined for other formats. */
  readonly indexes?: readonly number[];
  readonly payload: Uint8Array;
}

/** The schema id of framed `bytes`; throws a {@link WireFormatError} for a wrong magic byte or too few bytes. */
export function readSchemaId(bytes: Uint8Array): number {
  if (bytes.length < 5)
    throw new WireFormatError(
      `the value has ${bytes.length} bytes, fewer than the 5 of a schema-registry header`,
    );
  if (bytes[0] !== 0)
    throw new WireFormatError(
      `the value starts with byte ${bytes[0]}, not the magic byte 0 of the schema-registry wire format (was it written without a registry serializer?)`,
    );
  return (
    ((bytes[1] as number) << 24) |
    ((bytes[2] as number) << 16) |
    ((bytes[3] as number) << 8) |
    (bytes[4] as number)
  );
}

/** Splits framed bytes; `protobuf` reads the message indexes too. */
export function unframe(bytes: Uint8Array, protobuf: boolean): Framed {
  const schemaId = readSchemaId(bytes);
  if (!protobuf) return { schemaId, payload: bytes.subarray(5) };
  let pos = 5;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= bytes.length)
        throw new WireFormatError('the value ends inside its Protobuf message indexes');
      const b = bytes[pos++] as number;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 35) throw new WireFormatError('a Protobuf message index is longer than 5 bytes');
    }
    return result % 2 === 0 ? result / 2 : -(result + 1) / 2; // zig-zag
  };
  const count = varint();
  if (count < 0 || count > 64)
    throw new WireFormatError(
      `the value declares ${count} Protobuf message indexes; a message nests at most 64 deep`,
    );
  const indexes = count === 0 ? [0] : [];
  for (let i = 0; i < count; i++) indexes.push(varint());
  return { schemaId, indexes, payload: bytes.subarray(pos) };
}

function zigzagVarint(n: number, out: number[]): void {
  let v = n >= 0 ? n * 2 : -n * 2 - 1;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** The 5-byte header (plus Protobuf message indexes when given) that precedes a payload of `schemaId`. */
export function frameHeader(schemaId: number, indexes?: readonly number[]): Buffer {
  const bytes = [
    0,
    (schemaId >>> 24) & 0xff,
    (schemaId >>> 16) & 0xff,
    (schemaId >>> 8) & 0xff,
    schemaId & 0xff,
  ];
  if (indexes !== undefined) {
    if (indexes.length === 1 && indexes[0] === 0) bytes.push(0);
    else {
      zigzagVarint(indexes.length, bytes);
      for (const i of indexes) zigzagVarint(i, bytes);
    }
  }
  return Buffer.from(bytes);
}
