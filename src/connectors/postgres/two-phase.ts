/**
 * Exactly-once for the `postgres` sink: a two-phase commit per checkpoint (Flink's
 * TwoPhaseCommitSinkFunction). At barrier n the open transaction gets the source positions of
 * checkpoint n (rows of its own in `sluice_sink_offsets`) and is prepared as
 * `sluice:<pipeline>:<stage>:<n>`; once checkpoint n is stored, `COMMIT PREPARED` runs on the
 * admin connection. A restart from checkpoint m commits this sink's prepared transactions up to
 * m and rolls back later ones. The last transaction of a run is two-phase too and leaves a
 * `final` marker instead of positions, so a run restored from one of the finished run's
 * checkpoints knows every row is in.
 */
import type pg from 'pg';
import { type PgError, pgLib } from '../../clients/postgres.ts';
import type { Position } from '../../core/message.ts';
import type { CommittedPositions, Logger } from '../../core/stage.ts';
import type { AdminLane } from './connection.ts';
import { positionFromJson, positionJson } from './encode.ts';
import { OFFSETS_TABLE } from './table.ts';
import type { OpenTransaction } from './transaction.ts';

/**
 * The id in the gid of the last transaction of an exactly-once run (`finish`): prepared, then
 * committed, so a lost answer to its commit is told apart from a lost commit. A restart from any
 * checkpoint rolls it back if it is still prepared, like every transaction past that checkpoint.
 */
export const FINAL_ID = Number.MAX_SAFE_INTEGER;

/** What {@link TwoPhaseCommit} needs from the sink. */
export interface TwoPhaseOptions {
  /** The pipeline's name: keys the offsets rows and the gids. */
  readonly pipeline: string;
  /** The stage's name (known once opened). */
  readonly stage: () => string;
  /** ``table `t` at postgres://…``, for log lines. */
  readonly where: string;
  readonly log: () => Pick<Logger, 'info' | 'warn'>;
  readonly tx: OpenTransaction;
  readonly admin: AdminLane;
}

/** See the module comment. Called from one step of the sink at a time. */
export class TwoPhaseCommit {
  /** Ids of prepared transactions not yet committed, ascending. */
  readonly #prepared: number[] = [];
  /** Prepared transactions left by an earlier run are settled (once) before writing. */
  #settled = false;
  readonly #o: TwoPhaseOptions;

  constructor(options: TwoPhaseOptions) {
    this.#o = options;
  }

  #gid(id: number): string {
    return `${this.#prefix()}${id}`;
  }

  #prefix(): string {
    return `sluice:${this.#o.pipeline}:${this.#o.stage()}:`;
  }

  /**
   * Commits this sink's prepared transactions up to checkpoint `upTo` and rolls back later ones:
   * what a restart from checkpoint `upTo` (0: none) must find. Only the first call does anything.
   */
  async settle(upTo: number): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    const prefix = this.#prefix();
    const { where } = this.#o;
    await this.#o.admin.run('settling prepared transactions on', async (c) => {
      const r = await c.query<{ gid: string }>(
        'SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)',
        [prefix],
      );
      const ids = r.rows.map((x) => Number(x.gid.slice(prefix.length))).sort((a, b) => a - b);
      for (const id of ids) {
        const commit = id <= upTo;
        await c.query(`${commit ? 'COMMIT' : 'ROLLBACK'} PREPARED ${pgLib().escapeLiteral(prefix + id)}`);
        const which = id === FINAL_ID ? 'the final transaction' : `the transaction of checkpoint ${id}`;
        if (commit) {
          await this.#forgetBefore(c, id);
          this.#o.log().info(`Committed ${which} on ${where}, prepared by an earlier run`);
        } else
          this.#o
            .log()
            .warn(
              `Rolled back ${which} on ${where}, prepared by an earlier run: the run resumes from checkpoint ${upTo}, before it`,
            );
      }
    });
  }

  /** At barrier `id` (after the buffered rows were sent): the positions, then PREPARE TRANSACTION. */
  async prepareCheckpoint(
    id: number,
    positions: Readonly<Record<string, Position | undefined>>,
  ): Promise<void> {
    await this.#o.tx.prepare(`preparing the transaction of checkpoint ${id} on`, this.#gid(id), () =>
      this.#writeOffsets(positions, id),
    );
    this.#prepared.push(id);
  }

  /** Commits, in order, the prepared transactions of checkpoints up to `checkpointId`. */
  async commitThrough(checkpointId: number): Promise<void> {
    while (this.#prepared.length > 0 && (this.#prepared[0] as number) <= checkpointId) {
      await this.#commitPrepared(this.#prepared[0] as number);
      this.#prepared.shift();
    }
  }

  /**
   * At the end of input (after every row was sent): commits the prepared checkpoints, then the
   * rest in two phases too (so a lost answer to the commit is not taken for a lost commit, which
   * would send the rows again), replacing this sink's positions by a `final` marker.
   */
  async finish(sendRest: () => Promise<void>): Promise<void> {
    // The prepared checkpoints first: they hold the locks of their offsets rows.
    await this.commitThrough(FINAL_ID - 1);
    await sendRest();
    const { tx, pipeline } = this.#o;
    await tx.prepare('committing the last rows to', this.#gid(FINAL_ID), async () => {
      await tx.query(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline = $1 AND sink = $2`, [
        pipeline,
        this.#o.stage(),
      ]);
      await tx.query(
        `INSERT INTO ${OFFSETS_TABLE} (pipeline, sink, checkpoint_id, source, position) VALUES ($1, $2, $3, '*', '{"final": true}')`,
        [pipeline, this.#o.stage(), FINAL_ID],
      );
    });
    await this.#commitPrepared(FINAL_ID);
  }

  /**
   * The positions of the latest committed checkpoint (after settling what an earlier run left
   * prepared): `{ positions }`, or `{ final: true }` when the last run finished (its `final`
   * marker), or `{}` when nothing is stored.
   */
  async committed(): Promise<{ positions?: CommittedPositions; final?: true }> {
    await this.settle(0);
    const r = await this.#o.admin.run('reading offsets from', (c) =>
      c.query<{ source: string; position: unknown; checkpoint_id: string }>(
        `SELECT source, position, checkpoint_id FROM ${OFFSETS_TABLE}
          WHERE pipeline = $1 AND sink = $2
            AND checkpoint_id = (SELECT max(checkpoint_id) FROM ${OFFSETS_TABLE} WHERE pipeline = $1 AND sink = $2)`,
        [this.#o.pipeline, this.#o.stage()],
      ),
    );
    if (r.rows.length === 0) return {};
    if (Number(r.rows[0]?.checkpoint_id) === FINAL_ID) return { final: true };
    const sources: Record<string, Position | undefined> = {};
    let checkpointId = 0;
    for (const row of r.rows) {
      checkpointId = Math.max(checkpointId, Number(row.checkpoint_id));
      if (row.source !== '*') sources[row.source] = positionFromJson(row.position);
    }
    return { positions: { checkpointId, sources } };
  }

  /** Deletes this sink's positions (and `final` marker): the next run starts over. */
  async forgetPositions(): Promise<void> {
    await this.#o.admin.run('forgetting the positions of the finished run in', (c) =>
      c.query(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline = $1 AND sink = $2`, [
        this.#o.pipeline,
        this.#o.stage(),
      ]),
    );
  }

  /** `COMMIT PREPARED` checkpoint `id`'s transaction on the admin connection. */
  #commitPrepared(id: number): Promise<void> {
    return this.#o.admin.run(
      `committing the transaction of checkpoint ${id === FINAL_ID ? '(final)' : id} on`,
      async (c) => {
        try {
          await c.query(`COMMIT PREPARED ${pgLib().escapeLiteral(this.#gid(id))}`);
        } catch (err) {
          // 42704: no such prepared transaction — an attempt whose answer was lost committed it
          // (only this sink, under its own gids, commits or rolls back its transactions).
          if ((err as PgError).code !== '42704') throw err;
        }
      },
    );
  }

  /** Deletes the positions of checkpoints before `id` (committed, so no prepared one holds them). */
  async #forgetBefore(c: pg.Client, id: number): Promise<void> {
    await c.query(`DELETE FROM ${OFFSETS_TABLE} WHERE pipeline = $1 AND sink = $2 AND checkpoint_id < $3`, [
      this.#o.pipeline,
      this.#o.stage(),
      id,
    ]);
  }

  async #writeOffsets(positions: Readonly<Record<string, Position | undefined>>, id: number): Promise<void> {
    const json: Record<string, unknown> = {};
    for (const [source, pos] of Object.entries(positions)) json[source] = positionJson(pos);
    if (Object.keys(json).length === 0) json['*'] = null;
    await this.#o.tx.query(
      `INSERT INTO ${OFFSETS_TABLE} (pipeline, sink, checkpoint_id, source, position)
       SELECT $1, $2, $3, key, value FROM jsonb_each($4::jsonb)
       ON CONFLICT (pipeline, sink, checkpoint_id, source) DO UPDATE
         SET position = EXCLUDED.position, updated_at = now()`,
      [this.#o.pipeline, this.#o.stage(), id, JSON.stringify(json)],
    );
  }
}
