/**
 * How the `redis` source turns the entries a read returned into records: each is held for
 * acknowledgement (`acks.ts`), decoded (`entry.ts`) or dead-lettered (undecodable, or deleted
 * while pending), and skipped when it is already held (a pending re-read or a claim may return
 * it again) or when the restored checkpoint already covers it.
 */
import { ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import type { RecordMeta } from '../../core/message.ts';
import { decimalJsonParser } from '../../formats/json.ts';
import type { Acknowledgements } from './acks.ts';
import { decodeEntry, type RedisFormat } from './entry.ts';
import type { GroupScope } from './group.ts';

/** An entry as Redis returns it; `fields` is null when the entry was deleted while pending. */
export type RawEntry = [id: string, fields: string[] | null];

/** Records and meta collected for one emit. */
export interface Taken {
  readonly records: unknown[];
  readonly meta: RecordMeta[];
}

/** The epoch milliseconds of an entry id (`1700000000000-3`). */
export function idTime(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/** See the module comment. */
export class EntryIntake {
  /** Entries sent to the dlq output (undecodable or deleted). */
  deadLettered = 0;
  /** Entries deleted while pending (dead-lettered here, or dropped by XAUTOCLAIM). */
  deletedPending = 0;
  /** Entries the restored checkpoint covered, held again rather than emitted. */
  coveredSkipped = 0;
  /**
   * Entries the restored checkpoint covers (handed on before its barrier) that may still be
   * pending: the first re-read holds them again, to acknowledge with the next commit, instead of
   * emitting them twice. Undefined once that re-read is done.
   */
  covered: Map<string, Set<string>> | undefined;
  readonly #scope: GroupScope;
  readonly #acks: Acknowledgements;
  readonly #field: string | undefined;
  readonly #format: RedisFormat;
  readonly #parse: ((text: string) => unknown) | undefined;

  /** `decimals`: with `format: json`, fields read as exact decimals (see `decimalJsonParser`). */
  constructor(
    scope: GroupScope,
    acks: Acknowledgements,
    field: string | undefined,
    format: RedisFormat,
    decimals?: readonly string[],
  ) {
    this.#scope = scope;
    this.#acks = acks;
    this.#field = field;
    this.#format = format;
    this.#parse = decimalJsonParser(decimals);
  }

  /**
   * Adds the records of `entries` of `stream` to `out`, holding each entry; with `mayBeHeld` (a
   * pending re-read or a claim) an entry already held is skipped. Returns the entries taken
   * (emitted, dead-lettered or covered).
   */
  take(stream: string, entries: readonly RawEntry[], out: Taken, mayBeHeld: boolean): number {
    const ctx = this.#scope.ctx();
    const held = this.#acks.held;
    const field = this.#field;
    const format = this.#format;
    const group = this.#scope.group;
    let n = 0;
    const cov = this.covered?.get(stream);
    for (const [id, fields] of entries) {
      // New entries (`>`) were never delivered before; re-read and claimed ones may be ours already.
      if (mayBeHeld && held.has(stream, id)) continue;
      this.#acks.hold(stream, id);
      n++;
      if (cov?.delete(id) === true) {
        // Its effect is in the restored checkpoint: hold it for the next commit, do not emit it again.
        this.coveredSkipped++;
        continue;
      }
      const meta: RecordMeta = { source: ctx.name, position: { stream, id }, timestamp: idTime(id) };
      if (fields === null) {
        this.deletedPending++;
        this.deadLettered++;
        ctx.deadLetter(
          { stream, id, fields: null },
          new SluiceError(
            ErrorCode.PARSE,
            `entry \`${id}\` of stream \`${stream}\` was deleted (XDEL or trimming) while pending in group \`${group}\`; its data is gone`,
            { stream, id, group },
          ),
          meta,
        );
        continue;
      }
      let value: unknown;
      try {
        value = decodeEntry(fields, field, format, this.#parse);
      } catch (err) {
        this.deadLettered++;
        ctx.deadLetter(
          // The raw decoding of the whole entry (plain strings) cannot fail.
          { stream, id, fields: decodeEntry(fields, undefined, 'raw') },
          new SluiceError(
            ErrorCode.PARSE,
            `cannot decode entry \`${id}\` of stream \`${stream}\`${field !== undefined ? ` (field \`${field}\`, format \`${format}\`)` : ` (format \`${format}\`)`}: ${errorMessage(err)}; the entry went to the dlq with its fields`,
            { stream, id, field },
          ),
          meta,
        );
        continue;
      }
      out.records.push(value);
      out.meta.push(meta);
    }
    return n;
  }

  /** The first re-read of pending entries is over: what the checkpoint covered and is still listed was acknowledged before. */
  coveredDone(): void {
    if (this.covered === undefined) return;
    this.covered = undefined;
    if (this.coveredSkipped > 0) {
      const ctx = this.#scope.ctx();
      ctx.log.info(
        `Holding ${this.coveredSkipped} pending entries of ${this.#scope.names} that the restored checkpoint covers; they are acknowledged with the next checkpoint, not emitted again`,
        { stage: ctx.name },
      );
    }
  }
}
