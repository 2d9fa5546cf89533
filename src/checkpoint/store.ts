/**
 * Checkpoints at rest: what a completed checkpoint holds (source positions, sink states,
 * operator state blobs) and how it is written to and read from a {@link StateBackend}.
 *
 * Layout (keys of the backend):
 *
 *   cp/<id, 12 digits>/state/<stage>   operator state (v8-serialised), framed with a CRC-32
 *   cp/<id, 12 digits>/meta            metadata (ids, positions, sink states, blob checksums), framed
 *
 * Writing is two steps: every state blob first, then the metadata. The metadata is the commit
 * point: a checkpoint without it (a crash in the middle of writing) does not exist, and its
 * blobs are garbage-collected later. Every frame carries a CRC-32 of its payload and every blob's
 * CRC is in the metadata, so a corrupted or truncated checkpoint is detected on load and the
 * previous one is used, with a warning.
 */
import { deserialize, serialize } from 'node:v8';
import { crc32 } from 'node:zlib';
import type { CheckpointData } from '../core/checkpointing.ts';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { Position } from '../core/message.ts';
import type { Logger } from '../core/stage.ts';
import type { StateBackend } from '../state/backend.ts';

/** Frame magic of a metadata record (`SLCP`) and of a state blob (`SLST`). */
const META_MAGIC = 0x534c4350;
const BLOB_MAGIC = 0x534c5354;
const HEADER = 12;

/** Metadata as stored: the data minus the blobs, plus the blobs' checksums. */
interface StoredMeta {
  readonly version: 1;
  readonly id: number;
  readonly completedAt: number;
  readonly sources: Record<string, Position | undefined>;
  readonly sinks: Record<string, unknown>;
  readonly operators: Record<string, { readonly key: string; readonly crc: number; readonly bytes: number }>;
}

/** Test hooks inside {@link CheckpointStore.save}; each may throw or kill the process. */
export interface StoreHooks {
  /** After the state blobs and before the metadata: a crash here leaves a half-written checkpoint. */
  afterBlobs?(id: number): void;
}

/** Options of {@link CheckpointStore}. */
export interface CheckpointStoreOptions {
  /** Completed checkpoints kept (older ones are deleted after each save). Default 3, at least 1. */
  readonly retain?: number;
  /** Where the warnings about skipped (corrupted) checkpoints go. */
  readonly log?: Pick<Logger, 'warn'>;
  readonly hooks?: StoreHooks;
}

const pad = (id: number) => String(id).padStart(12, '0');
const prefixOf = (id: number) => `cp/${pad(id)}/`;
/** The checkpoint id of a key `cp/<id>/…`. */
const idOf = (key: string) => Number(key.slice(3, 15));

/** The distinct checkpoint ids of `keys`, ascending. */
function idsOf(keys: readonly string[]): number[] {
  return [...new Set(keys.map(idOf))].sort((a, b) => a - b);
}

/** `[magic u32][crc32 u32][length u32] payload`, big-endian. */
function frame(magic: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt32BE(magic, 0);
  out.writeUInt32BE(crc32(payload), 4);
  out.writeUInt32BE(payload.length, 8);
  out.set(payload, HEADER);
  return out;
}

/** The payload of a frame, or why it is not a valid one. */
function unframe(magic: number, bytes: Uint8Array | undefined): Buffer | string {
  if (bytes === undefined) return 'missing';
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < HEADER || b.readUInt32BE(0) !== magic) return 'not a checkpoint record';
  const len = b.readUInt32BE(8);
  if (b.length !== HEADER + len) return `truncated (${b.length - HEADER} of ${len} bytes)`;
  const payload = b.subarray(HEADER);
  if (crc32(payload) !== b.readUInt32BE(4)) return 'checksum mismatch';
  return payload;
}

/**
 * Saves, lists, loads and prunes checkpoints in a {@link StateBackend}.
 *
 * @example
 * const store = new CheckpointStore(memoryBackend(), { retain: 2 });
 * await store.save({ id: 1, completedAt: 0, sources: {}, sinks: {}, operators: new Map() });
 * (await store.latest())?.id; // 1
 */
export class CheckpointStore {
  readonly backend: StateBackend;
  private readonly retain: number;
  private readonly log: Pick<Logger, 'warn'> | undefined;
  private readonly hooks: StoreHooks;

  constructor(backend: StateBackend, options: CheckpointStoreOptions = {}) {
    this.backend = backend;
    this.retain = Math.max(1, options.retain ?? 3);
    this.log = options.log;
    this.hooks = options.hooks ?? {};
  }

  /**
   * Stores checkpoint `data` durably: blobs, then metadata (the commit point), then deletes
   * checkpoints beyond the last `retain` and leftovers of half-written ones. Resolves once the
   * checkpoint is durable; rejects (wrapped: `storing checkpoint n: …`) when the backend fails,
   * and then the checkpoint does not exist.
   */
  async save(data: CheckpointData): Promise<void> {
    const prefix = prefixOf(data.id);
    try {
      const blobs = new Map<string, Uint8Array | null>();
      const operators: StoredMeta['operators'] = {};
      for (const [stage, bytes] of data.operators) {
        const key = `${prefix}state/${stage}`;
        blobs.set(key, frame(BLOB_MAGIC, bytes));
        operators[stage] = { key, crc: crc32(bytes), bytes: bytes.length };
      }
      if (blobs.size > 0) await this.backend.write(blobs);
      this.hooks.afterBlobs?.(data.id);
      const meta: StoredMeta = {
        version: 1,
        id: data.id,
        completedAt: data.completedAt,
        sources: { ...data.sources },
        sinks: { ...data.sinks },
        operators,
      };
      await this.backend.write(new Map([[`${prefix}meta`, frame(META_MAGIC, serialize(meta))]]));
    } catch (err) {
      throw new SluiceError(
        ErrorCode.STAGE,
        `storing checkpoint ${data.id}: ${errorMessage(err)}`,
        { checkpoint: data.id },
        { cause: err },
      );
    }
    await this.prune(data.id);
  }

  /** Ids of every checkpoint with something stored (complete or not), ascending. */
  async ids(): Promise<number[]> {
    return idsOf(await this.backend.keys('cp/'));
  }

  /**
   * The newest checkpoint that is complete and intact, or undefined when there is none. A
   * checkpoint whose metadata is missing (half-written) is skipped silently; one whose
   * metadata or blobs fail their checksum is skipped with a warning naming it, and the one
   * before it is tried.
   */
  async latest(): Promise<CheckpointData | undefined> {
    const ids = await this.ids();
    for (let i = ids.length - 1; i >= 0; i--) {
      const id = ids[i] as number;
      const r = await this.load(id);
      if (r === 'incomplete') continue;
      if (typeof r === 'string') {
        this.log?.warn(`Checkpoint \`${id}\` is damaged (${r}); using the one before it`, { checkpoint: id });
        continue;
      }
      return r;
    }
    return undefined;
  }

  /** Loads checkpoint `id`: its data, `incomplete` when it has no metadata, or why it is damaged. */
  async load(id: number): Promise<CheckpointData | 'incomplete' | string> {
    const prefix = prefixOf(id);
    const raw = await this.backend.read(`${prefix}meta`);
    if (raw === undefined) return 'incomplete';
    const payload = unframe(META_MAGIC, raw);
    if (typeof payload === 'string') return `metadata ${payload}`;
    let meta: StoredMeta;
    try {
      meta = deserialize(payload) as StoredMeta;
    } catch (err) {
      return `metadata unreadable: ${errorMessage(err)}`;
    }
    if (meta.version !== 1 || meta.id !== id) return 'metadata of another checkpoint';
    const operators = new Map<string, Uint8Array>();
    for (const [stage, ref] of Object.entries(meta.operators)) {
      const blob = unframe(BLOB_MAGIC, await this.backend.read(ref.key));
      if (typeof blob === 'string') return `state of \`${stage}\` ${blob}`;
      if (crc32(blob) !== ref.crc || blob.length !== ref.bytes)
        return `state of \`${stage}\` does not match its metadata`;
      operators.set(stage, blob);
    }
    return { id, completedAt: meta.completedAt, sources: meta.sources, sinks: meta.sinks, operators };
  }

  /** Deletes every checkpoint (a finished job starts from scratch next time). */
  async clear(): Promise<void> {
    const keys = await this.backend.keys('cp/');
    if (keys.length > 0) await this.backend.write(new Map(keys.map((k) => [k, null])));
  }

  /** Keeps the newest `retain` complete checkpoints up to `newest`; drops older ones and older debris. */
  private async prune(newest: number): Promise<void> {
    // One listing serves both steps: on a server backend each is a round trip.
    const keys = await this.backend.keys('cp/');
    const ids = idsOf(keys).filter((id) => id <= newest);
    const keep = new Set<number>();
    for (let i = ids.length - 1; i >= 0 && keep.size < this.retain; i--) {
      const id = ids[i] as number;
      if ((await this.backend.read(`${prefixOf(id)}meta`)) !== undefined) keep.add(id);
    }
    const drop = keys.filter((k) => {
      const id = idOf(k);
      return id <= newest && !keep.has(id);
    });
    if (drop.length > 0) await this.backend.write(new Map(drop.map((k) => [k, null])));
  }
}
