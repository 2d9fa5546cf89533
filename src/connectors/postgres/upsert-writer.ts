/**
 * The `upsert` writer of the `postgres` sink: records become rows of INSERT parameters (text the
 * server parses with each column's type), sent in multi-row `INSERT … ON CONFLICT (key) DO UPDATE`
 * statements of at most `batchSize` rows and 65535 parameters. Within a chunk the last row of a
 * key wins (ON CONFLICT cannot touch a row twice in one statement). The open transaction keeps
 * the rows themselves, so a rejected row's dead letter holds its original record.
 */
import type { RecordMeta } from '../../core/message.ts';
import { paramValues } from './encode.ts';
import { type IsolationTarget, writeIsolating } from './isolate.ts';
import {
  isolationTarget,
  isRowObject,
  type Row,
  type TableWriter,
  type TxChunk,
  type WriteTarget,
} from './rows.ts';

/** Most parameters PostgreSQL takes in one statement. */
const MAX_PARAMETERS = 65_535;

/** The last row of each key in `rows`, in order (`rows` itself when no key repeats). */
export function lastPerKey(rows: Row[]): Row[] {
  const seen = new Map<string, number>();
  for (let i = 0; i < rows.length; i++) seen.set((rows[i] as Row).key as string, i);
  if (seen.size === rows.length) return rows;
  const out: Row[] = [];
  for (let i = 0; i < rows.length; i++)
    if (seen.get((rows[i] as Row).key as string) === i) out.push(rows[i] as Row);
  return out;
}

/** The {@link TableWriter} of `upsert` mode; see the module comment. */
export class UpsertWriter implements TableWriter {
  #buffer: Row[] = [];
  readonly #target: WriteTarget;
  readonly #isolation: IsolationTarget<Row>;
  readonly #key: readonly string[];
  /** Rows per statement: `batchSize`, fewer when the parameters would exceed 65535. */
  readonly #perStatement: number;

  /** `key`: the conflict columns; `batchSize`: most rows per statement. */
  constructor(target: WriteTarget, key: readonly string[], batchSize: number) {
    this.#target = target;
    this.#isolation = isolationTarget(target, 'upsert');
    this.#key = key;
    this.#perStatement = Math.max(
      1,
      Math.min(batchSize, Math.floor(MAX_PARAMETERS / target.shape.columns.length)),
    );
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  add(
    records: readonly unknown[],
    meta: readonly (RecordMeta | undefined)[] | undefined,
    notObject: (record: unknown, meta: RecordMeta | undefined) => void,
  ): void {
    const columns = this.#target.shape.columns;
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const m = meta?.[i];
      if (!isRowObject(record)) {
        notObject(record, m);
        continue;
      }
      const rec = record as Record<string, unknown>;
      const params = paramValues(rec, columns);
      let k = '';
      for (const name of this.#key) k += `${String(rec[name])}\u0000`;
      this.#buffer.push({ record, meta: m, params, key: k });
    }
  }

  takeChunks(): (() => Promise<TxChunk>)[] {
    const rows = this.#buffer;
    this.#buffer = [];
    const per = this.#perStatement;
    const out: (() => Promise<TxChunk>)[] = [];
    for (let i = 0; i < rows.length; i += per) {
      const chunk = lastPerKey(rows.length <= per ? rows : rows.slice(i, i + per));
      out.push(() => this.#write(chunk));
    }
    return out;
  }

  resend(chunk: TxChunk): Promise<TxChunk> {
    return this.#write(chunk.rows ?? []);
  }

  async #write(rows: Row[]): Promise<TxChunk> {
    const ok = await writeIsolating(this.#isolation, rows);
    return { rows: ok, count: ok.length };
  }
}
