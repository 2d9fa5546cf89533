/**
 * The `avro` file format's writer: records to an Avro object container file with a declared
 * schema. Each {@link RecordEncoder.encode} call (one batch) ends with a complete block, so the
 * output can be cut back to any batch boundary and continued (the file sink's checkpoints);
 * blocks are cut at `blockBytes` of uncompressed data within a batch.
 *
 * The sync marker is derived from the schema and the output path (`syncSeed`), not drawn at
 * random: a file continued after a restart (its header already written) gets blocks with the
 * same marker as its header.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { ErrorCode, SluiceError } from '../../core/errors.ts';
import type { RecordEncoder } from '../format.ts';
import { type avro, avroType } from '../schema/avro.ts';
import { type AvroCodec, compressBlock } from './codecs.ts';
import { longBytes, SYNC_BYTES, writeHeader } from './header.ts';

/** Options of {@link avroFileEncoder}. */
export interface AvroFileEncodeOptions {
  /** The writer schema, Avro JSON text. */
  readonly schema: string;
  /** Block codec. Default `null` (none). */
  readonly codec?: AvroCodec | undefined;
  /** Uncompressed bytes at which a block is cut. Default 64 KiB. */
  readonly blockBytes?: number | undefined;
  /** False: the output already has its header (a continued file); write blocks only. Default true. */
  readonly header?: boolean | undefined;
  /** What the sync marker is derived from besides the schema (the file sink passes the path). */
  readonly syncSeed?: string | undefined;
}

/** Why `value` does not fit `type`: the path of the first field that does not, and its value. */
export function avroMismatch(type: avro.Type, value: unknown): string {
  let where = '';
  type.isValid(value, {
    errorHook(path: string[], v: unknown, t: avro.Type) {
      if (where !== '') return;
      const shown = typeof v === 'bigint' ? `${v}n` : (JSON.stringify(v) ?? String(v));
      const name = (t as { typeName?: string; branchName?: string }).branchName ?? t.typeName ?? 'value';
      where = `field \`${path.join('.') || '(record)'}\`: ${shown === undefined ? 'missing' : shown.slice(0, 80)} is not a valid \`${name}\``;
    },
  } as unknown as { errorHook: (path: string[], v: unknown, t: avro.Type) => void });
  return where || 'it does not fit the schema';
}

/**
 * An encoder writing one Avro container file (see the module comment). Throws a `SLUICE_CONFIG`
 * error for a schema avsc does not accept.
 *
 * @example
 * const e = avroFileEncoder({ schema: '{"type":"record","name":"P","fields":[{"name":"id","type":"long"}]}', codec: 'deflate' });
 * const bytes = [e.header?.(), e.encode([{ id: 1 }])];
 */
export function avroFileEncoder(options: AvroFileEncodeOptions): RecordEncoder<unknown> {
  let type: avro.Type;
  try {
    type = avroType(options.schema);
  } catch (err) {
    throw new SluiceError(ErrorCode.CONFIG, `the Avro schema is not valid: ${(err as Error).message}`);
  }
  const codec = options.codec ?? 'null';
  const blockBytes = options.blockBytes ?? 64 * 1024;
  // The schema as declared (compacted): avsc's own export drops the attributes of custom logical
  // types (a decimal's scale).
  const schemaText = JSON.stringify(JSON.parse(options.schema));
  const sync = createHash('sha256')
    .update(`${schemaText}\n${options.syncSeed ?? ''}`)
    .digest()
    .subarray(0, SYNC_BYTES);
  let scratch = Buffer.allocUnsafe(Math.max(1024, blockBytes * 2));

  return {
    header() {
      return options.header === false ? undefined : writeHeader(schemaText, codec, sync);
    },
    encode(records, reject) {
      const out: Buffer[] = [];
      let used = 0;
      let count = 0;
      const flush = (): void => {
        if (count === 0) return;
        const data = compressBlock(codec, scratch.subarray(0, used));
        out.push(Buffer.from([...longBytes(count), ...longBytes(data.length)]));
        // `null` hands back a view of the scratch buffer, which the next block overwrites.
        out.push(codec === 'null' ? Buffer.from(data) : data, sync);
        used = 0;
        count = 0;
      };
      for (let i = 0; i < records.length; i++) {
        const record = records[i];
        let end: number;
        try {
          end = type.encode(record, scratch, used);
          while (end < 0) {
            const bigger = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end + used));
            scratch.copy(bigger, 0, 0, used);
            scratch = bigger;
            end = type.encode(record, scratch, used);
          }
        } catch (err) {
          const error = new SluiceError(
            ErrorCode.RECORD,
            `the record does not fit the Avro schema: ${avroMismatch(type, record)}`,
            { component: 'avro' },
            { cause: err },
          );
          if (reject === undefined) throw error;
          reject(i, error);
          continue;
        }
        used = end;
        count++;
        if (used >= blockBytes) flush();
      }
      flush();
      return out.length === 0 ? new Uint8Array(0) : Buffer.concat(out);
    },
  };
}
