/**
 * What `sluice run` shows while it runs: pure functions from metrics snapshots to text, so
 * they are tested without a terminal. The live line (TTY) is redrawn a few times a second;
 * off a TTY the same facts go out as a plain log line every few seconds.
 */
import type { MetricsSnapshot, StageSnapshot } from '../core/metrics.ts';

/**
 * `12,345`. Grouped by hand: the first `toLocaleString` of a process maps ICU's locale data,
 * ~9 MiB of resident memory for a comma (measured), which a 10 GB CSV run's peak cannot spare.
 */
export function formatCount(n: number): string {
  const r = Math.round(n);
  if (!Number.isSafeInteger(r)) return String(r);
  const digits = String(Math.abs(r));
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let i = out.length; i < digits.length; i += 3) out += `,${digits.slice(i, i + 3)}`;
  return r < 0 ? `-${out}` : out;
}

/** `850/s`, `12.3k/s`, `4.10M/s`. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond < 0) return '0/s';
  if (perSecond < 1000) return `${Math.round(perSecond)}/s`;
  if (perSecond < 1e6) return `${(perSecond / 1e3).toFixed(perSecond < 1e4 ? 2 : 1)}k/s`;
  return `${(perSecond / 1e6).toFixed(2)}M/s`;
}

/** `0:07`, `12:05`, `1:02:03` (hours only when needed). */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A run time for the summary: `420ms`, `3.2s`, `2m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `512 B`, `1.5 KB`, `2.7 MB`, `1.02 GB` (powers of 1024). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Records per second read between two snapshots (or over the whole run without `previous`). */
function readRate(now: MetricsSnapshot, previous?: MetricsSnapshot): number {
  const dt = (now.elapsedMs - (previous?.elapsedMs ?? 0)) / 1000;
  if (dt <= 0) return 0;
  return (now.recordsRead - (previous?.recordsRead ?? 0)) / dt;
}

/** Where the run is held back. */
export type Backpressure =
  | { readonly kind: 'queue'; readonly stage: string; readonly queued: number; readonly capacity: number }
  | { readonly kind: 'blocked'; readonly stage: string; readonly fraction: number };

/**
 * The stage holding the run back: the one with the fullest input queue (at least half full),
 * else the one that spent the largest share (at least a fifth) of the last interval blocked
 * sending downstream; undefined when records flow freely.
 */
export function backpressure(now: MetricsSnapshot, previous?: MetricsSnapshot): Backpressure | undefined {
  let fullest: StageSnapshot | undefined;
  let fill = 0;
  for (const s of now.stages) {
    if (s.queueCapacity <= 0) continue;
    const f = s.queued / s.queueCapacity;
    if (f > fill) {
      fill = f;
      fullest = s;
    }
  }
  if (fullest && fill >= 0.5)
    return { kind: 'queue', stage: fullest.name, queued: fullest.queued, capacity: fullest.queueCapacity };
  const dt = now.elapsedMs - (previous?.elapsedMs ?? 0);
  if (dt <= 0) return undefined;
  let most: { stage: string; fraction: number } | undefined;
  for (const s of now.stages) {
    const before = previous?.stages.find((p) => p.name === s.name)?.blockedMs ?? 0;
    const fraction = Math.min(1, (s.blockedMs - before) / dt);
    if (fraction >= 0.2 && (most === undefined || fraction > most.fraction))
      most = { stage: s.name, fraction };
  }
  return most ? { kind: 'blocked', ...most } : undefined;
}

/** Progress percentage and estimated time left, when a source knows its total. */
export function progressOf(
  now: MetricsSnapshot,
): { percent: number; etaMs?: number | undefined; text: string } | undefined {
  const p = now.progress;
  if (p === undefined || p.total === undefined || p.total <= 0) return undefined;
  const fraction = Math.min(1, p.done / p.total);
  const etaMs = fraction > 0 && fraction < 1 ? (now.elapsedMs * (1 - fraction)) / fraction : undefined;
  const of = p.unit === 'bytes' ? formatBytes(p.total) : `${formatCount(p.total)} records`;
  return {
    percent: fraction * 100,
    etaMs,
    text: `${(fraction * 100).toFixed(fraction < 0.1 ? 1 : 0)}% of ${of}`,
  };
}

function backpressureText(b: Backpressure | undefined): string {
  if (b === undefined) return 'backpressure none';
  if (b.kind === 'queue') return `backpressure \`${b.stage}\` ${b.queued}/${b.capacity}`;
  return `backpressure \`${b.stage}\` blocked ${Math.round(b.fraction * 100)}%`;
}

/** The facts of one status update, in display order. */
function statusParts(now: MetricsSnapshot, previous?: MetricsSnapshot): string[] {
  const parts = [
    `${formatCount(now.recordsRead)} read`,
    formatRate(readRate(now, previous)),
    `${formatCount(now.recordsWritten)} written`,
    `${formatCount(now.deadLetters)} DLQ`,
    backpressureText(backpressure(now, previous)),
    formatElapsed(now.elapsedMs),
  ];
  const progress = progressOf(now);
  if (progress)
    parts.push(
      `${progress.text}${progress.etaMs === undefined ? '' : ` ETA ${formatElapsed(progress.etaMs)}`}`,
    );
  return parts;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * The live status line for a TTY (no newline), cut to `width` columns.
 *
 * @example
 * formatStatusLine(handle.metrics(), previousSnapshot, { width: process.stderr.columns, frame: 3 });
 * // '⠸ 12,345 read · 4.10k/s · 12,300 written · 3 DLQ · backpressure none · 0:03 · 45% of 2.70 MB ETA 0:04'
 */
export function formatStatusLine(
  now: MetricsSnapshot,
  previous?: MetricsSnapshot,
  options: { width?: number | undefined; frame?: number | undefined } = {},
): string {
  const spin = now.state === 'draining' ? '…' : (SPINNER[(options.frame ?? 0) % SPINNER.length] as string);
  const line = `${spin} ${statusParts(now, previous).join(' · ')}`;
  const width = options.width ?? 0;
  if (width > 1 && line.length > width - 1) return `${line.slice(0, width - 2)}…`;
  return line;
}

/** The periodic log line off a TTY: `Progress of \`name\`: 12,345 read, …`. */
export function formatLogLine(now: MetricsSnapshot, previous?: MetricsSnapshot): string {
  return `Progress of \`${now.pipeline}\`: ${statusParts(now, previous).join(', ')}`;
}

/**
 * The end-of-run summary (one line, plus a line per stage that dead-lettered records).
 *
 * @example
 * formatSummary(summary); // 'Finished `etl` in 3.2s: 1,000 read, 998 written, 2 to DLQ (312/s); peak 64 records queued.'
 */
export function formatSummary(final: MetricsSnapshot): string {
  const verb =
    final.state === 'succeeded'
      ? 'Finished'
      : final.state === 'cancelled'
        ? 'Stopped'
        : final.state === 'failed'
          ? 'Failed'
          : 'Ended';
  const rate = formatRate(readRate(final));
  const head = `${verb} \`${final.pipeline}\` ${final.state === 'succeeded' ? 'in' : 'after'} ${formatDuration(final.elapsedMs)}: ${formatCount(final.recordsRead)} read, ${formatCount(final.recordsWritten)} written, ${formatCount(final.deadLetters)} to DLQ (${rate}); peak ${formatCount(final.peakQueuedRecords)} records queued.`;
  const dead = final.stages
    .filter((s) => s.deadLetters > 0)
    .map(
      (s) =>
        `  \`${s.name}\` sent ${formatCount(s.deadLetters)} record${s.deadLetters === 1 ? '' : 's'} to the DLQ`,
    );
  // Dropped on purpose (`overflow: dropOldest`), but lost all the same: always said.
  const dropped = final.stages
    .filter((s) => s.droppedRecords > 0)
    .map(
      (s) =>
        `  ${formatCount(s.droppedRecords)} record${s.droppedRecords === 1 ? '' : 's'} dropped before \`${s.name}\`: its input buffer was full (overflow \`dropOldest\`)`,
    );
  return [head, ...dead, ...dropped].join('\n');
}
