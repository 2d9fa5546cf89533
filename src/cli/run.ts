/**
 * `sluice run`: loads a pipeline (YAML file or TypeScript module), runs it with a live status
 * line, and turns Ctrl-C into a graceful drain (first) or an immediate stop (second).
 */
import { basename } from 'node:path';
import { buildPipeline } from '../config/build.ts';
import { DEFAULT_MAX_ERROR_RATE } from '../config/keys.ts';
import { loadPipelineFile } from '../config/load.ts';
import { isModuleFile, loadPipelineModule } from '../config/module-steps.ts';
import { READER_GONE } from '../connectors/stdio/sink.ts';
import { SluiceError } from '../core/errors.ts';
import type { MetricsSnapshot } from '../core/metrics.ts';
import type { RunHandle, RunOptions } from '../core/run.ts';
import type { Pipeline } from '../pipeline.ts';
import { configError } from '../spec/problems.ts';
import type { Registry } from '../spec/registry.ts';
import type { RunServer } from './http.ts';
import { type LogFormat, RunLog } from './logs.ts';
import { type CliIO, ExitCode, exitCodeOf, printProblems } from './output.ts';
import { formatCount, formatLogLine, formatStatusLine, formatSummary } from './status.ts';

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** `path=value` overrides of the pipeline file. */
  readonly set?: readonly string[];
  /** `--http host:port`: serve metrics and the dashboard there (wins over the file's `http:`). */
  readonly http?: string | undefined;
  /** `--log-format`: `text` (default) or `json` (one object per line). */
  readonly logFormat?: LogFormat | undefined;
}

/** The message printed at the first Ctrl-C. */
export const DRAIN_MESSAGE = 'Stopping: draining in-flight records (press Ctrl-C again to stop at once)';

/**
 * Runs the pipeline in `file` and resolves with the exit code: 0 when it finished, 1 when it
 * failed or sent more than `maxErrorRate` (default {@link DEFAULT_MAX_ERROR_RATE}) of its records
 * to the DLQ, 2 for a configuration error, 130 (143 for SIGTERM) when a signal stopped it — drained
 * after the first, or at once after a second: then it resolves at once, without waiting for the stages to wind down (see `exitProcess` in main.ts). Signal listeners are removed before it resolves.
 */
export async function runCommand(file: string, options: RunCommandOptions, io: CliIO): Promise<number> {
  let pipeline: Pipeline;
  let runOptions: RunOptions = {};
  let httpAddress = options.http;
  const format = options.logFormat ?? 'text';
  // Until the file names it, the pipeline is called after the file (as its `name` defaults to).
  let log = new RunLog(io.stderr, format, basename(file).replace(/\.[^.]*$/, ''));
  try {
    if (isModuleFile(file)) {
      if ((options.set?.length ?? 0) > 0) {
        throw configError(file, [
          {
            severity: 'error',
            file,
            path: '',
            message: '--set applies to YAML pipeline files, not to modules',
          },
        ]);
      }
      pipeline = await loadPipelineModule(file);
    } else {
      const load = (registry: Registry) =>
        loadPipelineFile(file, { registry, env: io.env, set: options.set ?? [] });
      // A file with problems is checked again against every component, for complete hints.
      const config = await load(io.registry).catch(async (err: unknown) => {
        if (io.fullRegistry === undefined || exitCodeOf(err) !== ExitCode.CONFIG) throw err;
        return load(await io.fullRegistry());
      });
      printProblems(io.stderr, config.warnings);
      log = new RunLog(io.stderr, format, config.name);
      httpAddress ??= config.http?.address;
      const built = await buildPipeline(config);
      pipeline = built.pipeline;
      runOptions = built.runOptions;
      if (built.checkpoint !== undefined) {
        // Loaded only when the file asks for checkpoints: the store, the WAL and the coordinator.
        const { openCheckpoints } = await import('../checkpoint/setup.ts');
        runOptions = {
          ...runOptions,
          checkpoint: await openCheckpoints(built.checkpoint, { log: log.logger(), env: io.env }),
        };
      }
    }
  } catch (err) {
    log.error(err, io.env);
    return exitCodeOf(err);
  }
  if (isModuleFile(file)) log = new RunLog(io.stderr, format, pipeline.graph.name);
  const maxErrorRate = runOptions.maxErrorRate ?? DEFAULT_MAX_ERROR_RATE;
  const handle = pipeline.run({ ...runOptions, maxErrorRate, log: log.logger() });
  let server: RunServer | undefined;
  if (httpAddress !== undefined) {
    try {
      // Loaded only when asked for: prom-client and the server stay out of plain runs.
      const { serveRun } = await import('./http.ts');
      server = await serveRun(handle, { address: httpAddress });
      log.say('info', `Serving metrics and the dashboard at ${server.url}`, { url: server.url });
    } catch (err) {
      await handle.stop({ drain: false }).catch(() => {});
      log.error(err, io.env);
      return exitCodeOf(err);
    }
  }
  try {
    return await supervise(handle, io, maxErrorRate, log);
  } finally {
    await server?.close();
  }
}

/**
 * The verdict on a run that ended by itself with more dead letters than `maxErrorRate` allows
 * (the in-run check waits for 100 records; a short run is judged here), or undefined. The rate is
 * over every record the sources took: those read and those they could not decode, so an input
 * whose every line is malformed fails the run instead of passing as "0 read".
 */
export function errorRateVerdict(final: MetricsSnapshot, maxErrorRate: number): string | undefined {
  let undecodable = 0;
  for (const s of final.stages) if (s.kind === 'source') undecodable += s.deadLetters;
  const taken = final.recordsRead + undecodable;
  // `1` never fails: a record may count twice (a dead letter the dlq refused, written again reduced).
  if (taken === 0 || maxErrorRate >= 1 || final.deadLetters / taken <= maxErrorRate) return undefined;
  const pct = (x: number) => `${Number((x * 100).toFixed(2))}%`;
  const of =
    undecodable === 0
      ? `${formatCount(taken)} records read`
      : `${formatCount(taken)} input records (${formatCount(undecodable)} could not be decoded)`;
  return `${formatCount(final.deadLetters)} of ${of} (${pct(final.deadLetters / taken)}) went to the DLQ, above maxErrorRate ${pct(maxErrorRate)}: fix the input (see the DLQ) or raise \`maxErrorRate\` in the pipeline file`;
}

/** Watches a running pipeline: status output, signals, summary, exit code. */
async function supervise(handle: RunHandle, io: CliIO, maxErrorRate: number, log: RunLog): Promise<number> {
  const err = io.stderr;
  // The live line is for people at a terminal; a JSON log gets progress lines instead.
  const tty = err.isTTY === true && log.format === 'text';
  const intervals = io.statusIntervalMs ?? { tty: 250, log: 10_000 };
  let previous: MetricsSnapshot | undefined;
  let frame = 0;
  let drawn = false;
  const clearLine = () => {
    if (drawn) err.write('\r\x1b[K');
    drawn = false;
  };
  const tick = () => {
    const now = handle.metrics();
    if (tty) {
      err.write(`\r${formatStatusLine(now, previous, { width: err.columns, frame: frame++ })}\x1b[K`);
      drawn = true;
    } else log.say('info', formatLogLine(now, previous), progressContext(now));
    previous = now;
  };
  const timer = setInterval(tick, tty ? intervals.tty : intervals.log);
  timer.unref();

  let signals = 0;
  let last: 'SIGINT' | 'SIGTERM' = 'SIGINT';
  // Resolved by the second signal: the CLI returns then, without waiting for the stages or for
  // a blocked stdout/stderr (a pipe nobody reads) to let the run finish.
  let forceStop: () => void = () => {};
  const forced = new Promise<'forced'>((resolve) => {
    forceStop = () => resolve('forced');
  });
  const interrupted = () => (last === 'SIGTERM' ? ExitCode.TERMINATED : ExitCode.INTERRUPTED);
  const onSignal = (name: 'SIGINT' | 'SIGTERM') => {
    signals++;
    last = name;
    clearLine();
    if (signals === 1) {
      log.say('info', DRAIN_MESSAGE, { signal: name });
      handle.stop({ drain: true }).catch(() => {});
    } else {
      log.say('warn', 'Stopping now: in-flight records are dropped and uncommitted output is discarded', {
        signal: name,
      });
      handle.stop({ drain: false }).catch(() => {});
      forceStop();
    }
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  io.signals.on('SIGINT', onInt);
  io.signals.on('SIGTERM', onTerm);
  try {
    const summary = await Promise.race([handle.done, forced]);
    clearLine();
    if (summary === 'forced') {
      summarise(log, { ...handle.metrics(), state: 'cancelled' });
      return interrupted();
    }
    // Stopped by a signal, even when the drain let it end cleanly: not `Finished`, and the
    // signal's exit code (130/143), so a script can tell a stopped run from a finished one.
    if (signals > 0 || summary.state === 'cancelled') {
      summarise(log, { ...summary, state: 'cancelled' });
      return signals > 0 ? interrupted() : ExitCode.INTERRUPTED;
    }
    const verdict = errorRateVerdict(summary, maxErrorRate);
    if (verdict !== undefined) {
      summarise(log, { ...summary, state: 'failed' });
      log.say('error', verdict, { maxErrorRate });
      return ExitCode.FAILED;
    }
    summarise(log, summary);
    return ExitCode.OK;
  } catch (e) {
    clearLine();
    // `sluice run … | head`: the reader took what it wanted; end quietly, as `cat` would.
    if (e instanceof SluiceError && e.context.reason === READER_GONE) return ExitCode.OK;
    summarise(log, handle.metrics());
    log.error(e, io.env);
    return signals > 1 ? interrupted() : exitCodeOf(e);
  } finally {
    clearInterval(timer);
    io.signals.off('SIGINT', onInt);
    io.signals.off('SIGTERM', onTerm);
  }
}

/** The end-of-run summary: its text, and in a JSON log the totals as context. */
function summarise(log: RunLog, final: MetricsSnapshot): void {
  log.say(final.state === 'failed' ? 'error' : 'info', formatSummary(final), progressContext(final));
}

/** The totals of a snapshot, as a log line's context. */
function progressContext(m: MetricsSnapshot): Record<string, unknown> {
  return {
    state: m.state,
    elapsedMs: Math.round(m.elapsedMs),
    recordsRead: m.recordsRead,
    recordsWritten: m.recordsWritten,
    deadLetters: m.deadLetters,
    droppedRecords: m.droppedRecords,
  };
}
