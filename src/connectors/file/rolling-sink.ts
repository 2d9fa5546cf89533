/**
 * The `file` sink with `rolling`: output of an unbounded run as a series of part files that
 * appear while it runs, as Flink's `FileSink` does. The policy (see README.md):
 *
 * - A part is opened at the first record after the previous one ended, named by the `path`
 *   template (`part-names.ts`: time bucket and part id), and written in a hidden staging folder
 *   under a temporary name (`.sluice-parts-<hash>/<id>.inprogress`).
 * - It ends (rolls) when it holds `maxSize` bytes or more (checked after each batch, so a part may
 *   pass it by one batch), when it is `maxAge` old or the time bucket changed (checked when records
 *   arrive), at every checkpoint barrier, and at the end of the input.
 * - Under checkpoints a part that ended is committed — renamed to its final name — once the
 *   checkpoint that covers it is stored (`commitCheckpoint`), so a final name only ever holds a
 *   complete part that no restart will write again: exactly-once. A restart commits what its
 *   checkpoint holds pending (the crash may have come between storing and renaming) and deletes
 *   every other staged file (parts after the checkpoint, which the sources replay).
 * - At the end of the input under checkpoints, `finish` first writes a marker (`finished.json`:
 *   the job's run id and its last parts) into the staging folder, then renames. A crash before
 *   the runtime deletes the job's checkpoints makes the next run restore the last one: it finds
 *   the marker, completes the renames, and writes nothing more (the tail is in the parts). The
 *   marker stays until the next run of the template (a new job) clears the staging folder.
 * - Without checkpoints a part is committed as soon as it ends: a crash loses the part being
 *   written and the restart replays input that committed parts already hold (at-least-once).
 */
import { type FileHandle, mkdir, open, readFile, rename, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ErrorCode, SluiceError, wrapError } from '../../core/errors.ts';
import type { Batch } from '../../core/message.ts';
import type { Sink, StageContext } from '../../core/stage.ts';
import { type FormatEncodeOptions, formatEncoder } from '../../formats/formats.ts';
import type { CompressionChoice, FileFormat } from '../../io/read.ts';
import { type ByteWriter, byteWriter, encodeRecords, outputCompression } from '../../io/write.ts';
import { bucketOf, partName, partTemplateProblem, stagingDir } from './part-names.ts';
import { exists, syncDir, writeAll } from './sink.ts';

/** When a part ends, besides checkpoints and the end of the input. */
export interface RollingPolicy {
  /** End a part once it holds this many bytes (on disk, compressed). */
  readonly maxSize?: number | undefined;
  /** End a part this long (ms) after it was opened. */
  readonly maxAge?: number | undefined;
}

/** Options of {@link rollingFileSink}. */
export interface RollingFileSinkOptions extends FormatEncodeOptions {
  /** Template of the part names: time fields and `{part}` (see `part-names.ts`). */
  path: string;
  format: FileFormat;
  /** Compression of each part; `auto`: by the template's extension. */
  compression?: CompressionChoice | undefined;
  level?: number | undefined;
  rolling: RollingPolicy;
}

/** One part: its final name and where it is written until committed. */
interface Part {
  readonly final: string;
  readonly temp: string;
}

/** What a checkpoint holds: the job's run id, the next part number, the parts not yet committed. */
export interface RollingFileSinkState {
  readonly version: 1;
  readonly run: string;
  readonly next: number;
  readonly pending: readonly Part[];
}

/** A rolling file sink, with what tests look at. */
export interface RollingFileSink extends Sink<unknown> {
  /** Parts committed (renamed to their final names) by this sink, in order. */
  readonly committed: readonly string[];
}

/** The part being written. */
interface OpenPart extends Part {
  readonly handle: FileHandle;
  readonly writer: ByteWriter;
  readonly encoder: ReturnType<typeof formatEncoder>;
  readonly openedAt: number;
  readonly bucket: string;
  bytes: number;
}

const toBytes = (data: Uint8Array | string) => (typeof data === 'string' ? Buffer.from(data, 'utf8') : data);

/**
 * A sink writing rolling part files named by the `path` template; see the module comment for
 * the policy and its guarantees. Throws a `SLUICE_CONFIG` error at construction for a template
 * that cannot name parts or a bad compression setting.
 *
 * @example
 * rollingFileSink({ path: 'out/%Y-%m-%d/events-{part}.jsonl.zst', format: 'jsonl', rolling: { maxSize: 64 << 20 } });
 */
export function rollingFileSink(options: RollingFileSinkOptions): RollingFileSink {
  const template = options.path;
  const { format } = options;
  const problem = partTemplateProblem(template);
  const compression = outputCompression(
    template.replaceAll('{part}', 'p'),
    options.compression,
    options.level,
  );
  if (problem !== undefined || compression.problems.length > 0) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `file \`${template}\`: ${[problem, ...compression.problems].filter(Boolean).join('; ')}`,
      { file: template },
    );
  }
  const staging = stagingDir(template);
  const { maxSize, maxAge } = options.rolling;
  let ctx: StageContext | undefined;
  // `node:crypto` loads with the first rolling sink, not with every run (see `stagingDir`).
  let run = process.getBuiltinModule('node:crypto').randomBytes(4).toString('hex');
  let next = 0;
  let current: OpenPart | undefined;
  /** Parts ended since the last barrier (committed with the next checkpoint). */
  let ended: Part[] = [];
  /** Parts of stored-or-storing checkpoints, by checkpoint id, not committed yet. */
  const byCheckpoint = new Map<number, Part[]>();
  const committed: string[] = [];
  let cleaned = false;
  let finished = false;
  /**
   * The last run of this job ended its input and renamed every part, then died before its
   * checkpoints were deleted: this run reads the input again from the checkpoint and writes nothing.
   */
  let completed = false;
  /** Written by `finish` under checkpoints; see {@link FinishedMarker}. */
  const marker = join(staging, 'finished.json');
  /**
   * The write in progress: a failed run may call `close` while a write the runtime stopped
   * waiting for still runs (and may be opening a part), so `close` waits for it first.
   */
  let writing: Promise<void> = Promise.resolve();

  const fail = (doing: string, err: unknown) =>
    err instanceof SluiceError
      ? err
      : wrapError(`${doing} part files \`${template}\``, err, { file: template });
  const checkpointing = () => ctx?.checkpointing === true;

  async function openPart(): Promise<OpenPart> {
    if (!cleaned && checkpointing()) {
      // The checkpoint folder makes this run the one writer of the template: what is staged
      // now is left by a run that crashed after its last checkpoint (or before its first).
      await rm(staging, { recursive: true, force: true });
    }
    cleaned = true;
    await mkdir(staging, { recursive: true });
    const now = ctx?.clock.now() ?? Date.now();
    const id = `${run}-${next++}`;
    const temp = join(staging, `${id}.inprogress`);
    const handle = await open(temp, 'w');
    const part: OpenPart = {
      final: partName(template, now, id),
      temp,
      handle,
      writer: byteWriter(async (bytes) => {
        await writeAll(handle, bytes);
        part.bytes += bytes.length;
      }, compression),
      // Each part is a file of its own: a CSV part gets its own header.
      encoder: formatEncoder(format, options),
      openedAt: now,
      bucket: bucketOf(template, now),
      bytes: 0,
    };
    const header = part.encoder.header?.();
    if (header !== undefined && header.length > 0) await part.writer.write(toBytes(header));
    return part;
  }

  /** Ends the part being written: flushes, fsyncs and closes it; it then waits for its commit. */
  async function endPart(): Promise<void> {
    const p = current;
    if (p === undefined) return;
    current = undefined;
    await p.writer.end();
    await p.handle.sync();
    await p.handle.close();
    if (checkpointing()) ended.push({ final: p.final, temp: p.temp });
    else await commit([{ final: p.final, temp: p.temp }]);
  }

  /** Renames `parts` to their final names (a part already renamed is skipped) and fsyncs the folders. */
  async function commit(parts: readonly Part[]): Promise<void> {
    const dirs = new Set<string>();
    for (const p of parts) {
      if (await exists(p.temp)) {
        await mkdir(dirname(p.final), { recursive: true });
        await rename(p.temp, p.final);
        dirs.add(dirname(p.final));
      } else if (!(await exists(p.final))) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `part \`${p.final}\` of a stored checkpoint is gone (neither it nor \`${p.temp}\` exists); delete the checkpoint folder to start over`,
          { file: p.final },
        );
      }
      committed.push(p.final);
    }
    for (const d of dirs) await syncDir(d);
  }

  /** Ends the part being written when the policy says so. */
  async function rollIfDue(now: number): Promise<void> {
    const p = current;
    if (p === undefined) return;
    const old = maxAge !== undefined && now - p.openedAt >= maxAge;
    if (old || bucketOf(template, now) !== p.bucket || (maxSize !== undefined && p.bytes >= maxSize)) {
      await endPart();
    }
  }

  return {
    get committed() {
      return committed;
    },

    open(context) {
      ctx = context;
    },

    write(batch: Batch<unknown>) {
      if (batch.records.length === 0 || completed) return;
      writing = (async () => {
        try {
          await rollIfDue(ctx?.clock.now() ?? Date.now());
          current ??= await openPart();
          const p = current;
          const data = encodeRecords(p.encoder, format, batch.records, ctx, batch.meta);
          if (data.length > 0) await p.writer.write(toBytes(data));
          if (maxSize !== undefined && p.bytes >= maxSize) await endPart();
        } catch (err) {
          throw fail('writing', err);
        }
      })();
      return writing;
    },

    async onSignal(signal) {
      if (signal.kind !== 'barrier' || !checkpointing() || completed) return;
      try {
        // Every checkpoint ends the part: it is committed once the checkpoint is stored.
        await endPart();
        await syncDir(staging);
      } catch (err) {
        throw fail('flushing', err);
      }
    },

    snapshot(checkpointId) {
      if (ended.length > 0) byCheckpoint.set(checkpointId, ended);
      ended = [];
      return {
        version: 1,
        run,
        next,
        pending: [...byCheckpoint.values()].flat(),
      } satisfies RollingFileSinkState;
    },

    async commitCheckpoint(checkpointId) {
      for (const [id, parts] of [...byCheckpoint].sort((a, b) => a[0] - b[0])) {
        if (id > checkpointId) break;
        await commit(parts);
        byCheckpoint.delete(id);
      }
    },

    async restore(state) {
      if (state === undefined) return;
      const st = state as Partial<RollingFileSinkState>;
      if (
        st.version !== 1 ||
        typeof st.run !== 'string' ||
        typeof st.next !== 'number' ||
        !Array.isArray(st.pending)
      ) {
        throw new SluiceError(
          ErrorCode.STAGE,
          `the checkpoint's state of part files \`${template}\` is damaged`,
          {
            file: template,
          },
        );
      }
      run = st.run;
      next = st.next;
      try {
        const done = await readMarker(marker);
        if (done?.run === run) {
          // Renames are idempotent: the crash may have come between the marker and the last one.
          await commit(done.parts);
          completed = true;
          ctx?.log.warn(
            `Part files \`${template}\` already hold every record of this input (the last run committed its final parts, then stopped before deleting its checkpoints); the input is read again from the checkpoint and nothing more is written`,
            { file: template },
          );
          return;
        }
        // The checkpoint was stored; its parts may not have been renamed before the crash.
        await commit(st.pending);
        // Everything else staged was written after the checkpoint: the sources replay it.
        await rm(staging, { recursive: true, force: true });
        cleaned = true;
      } catch (err) {
        throw fail('restoring', err);
      }
    },

    async prepare() {
      try {
        const stoppedWithCheckpoints = ctx?.stopSignal.aborted === true && checkpointing();
        if (!stoppedWithCheckpoints) await endPart();
      } catch (err) {
        throw fail('committing', err);
      }
    },

    async finish() {
      const stopped = ctx?.stopSignal.aborted === true;
      try {
        if (completed) {
          finished = true;
          return;
        }
        if (stopped && checkpointing()) {
          // Not the end of the input: what no stored checkpoint covers stays staged, and the next
          // run (from the last checkpoint) writes it again.
          ctx?.log.warn(
            `Stopped before the end of the input: parts of \`${template}\` after the last checkpoint stay staged in \`${staging}\`; the next run writes them again`,
            { file: template },
          );
          return;
        }
        // The end of the input (or, without checkpoints, a stop: each part still holds whole
        // records): every part is committed.
        await endPart();
        const all = [...[...byCheckpoint].sort((a, b) => a[0] - b[0]).flatMap(([, p]) => p), ...ended];
        byCheckpoint.clear();
        ended = [];
        if (checkpointing()) {
          // Until the runtime deletes the job's checkpoints, a crash restores the last one: the
          // marker tells that run the input is complete, so it does not write the tail again.
          // It stays (the only file in the staging folder) until the next run of the template.
          await mkdir(staging, { recursive: true });
          await writeDurably(marker, JSON.stringify({ run, parts: all } satisfies FinishedMarker));
          await syncDir(staging);
        }
        await commit(all);
        finished = true;
        if (!checkpointing()) await rmdir(staging).catch(() => {}); // empty unless another run writes the same template
      } catch (err) {
        throw fail('committing', err);
      }
    },

    async close() {
      await writing.catch(() => {});
      const p = current;
      current = undefined;
      await p?.writer.abort();
      await p?.handle.close().catch(() => {});
      // Without checkpoints nothing can continue a part that did not end: drop it. With them,
      // the restart cleans the staging folder.
      if (p !== undefined && !checkpointing() && !finished) await rm(p.temp, { force: true });
    },
  };
}

/** What `finish` leaves in the staging folder of a job that ended its input under checkpoints. */
interface FinishedMarker {
  readonly run: string;
  readonly parts: readonly Part[];
}

/** The marker at `p`, or undefined when there is none or it is not one (a torn write is no marker). */
async function readMarker(p: string): Promise<FinishedMarker | undefined> {
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const m = JSON.parse(text) as Partial<FinishedMarker>;
    return typeof m.run === 'string' && Array.isArray(m.parts) ? (m as FinishedMarker) : undefined;
  } catch {
    return undefined;
  }
}

/** Writes `text` to `p` and fsyncs it. */
async function writeDurably(p: string, text: string): Promise<void> {
  const h = await open(p, 'w');
  try {
    await writeAll(h, Buffer.from(text, 'utf8'));
    await h.sync();
  } finally {
    await h.close();
  }
}
