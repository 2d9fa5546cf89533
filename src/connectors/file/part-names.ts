/**
 * Names of the part files a rolling `file` sink writes: a `path` template with a time bucket in
 * strftime style and the part's id, e.g. `out/%Y-%m-%d/events-{part}.jsonl.zst` →
 * `out/2026-12-07/events-k3f9a2-0.jsonl.zst`.
 *
 * - `%Y` year, `%m` month, `%d` day, `%H` hour, `%M` minute — UTC, of the time the part was
 *   opened (processing time, as Flink's `DateTimeBucketAssigner`); `%%` is a `%`.
 * - `{part}` is the part's id, `<run>-<n>`: `run` is fixed for a job (kept in its checkpoints,
 *   new for a job that starts over) so two jobs never pick the same name, and `n` counts parts.
 *   It must be in the file name (the last path segment), so every part has a name of its own.
 */
import { dirname, join } from 'node:path';

const TOKEN = /%([YmdHM%])/g;

/** Why `template` cannot name parts, or undefined when it can. */
export function partTemplateProblem(template: string): string | undefined {
  // Token by token, so the second `%` of `%%` is not taken for the start of another field.
  const bad = [...template.matchAll(/%(.?)/g)].find((m) => !'YmdHM%'.includes(m[1] || '!'));
  if (bad !== undefined) {
    return `\`%${bad[1] ?? ''}\` in \`path\` is not a time field; use \`%Y\`, \`%m\`, \`%d\`, \`%H\`, \`%M\` (UTC) or \`%%\` for a \`%\``;
  }
  const other = /\{(?!part\})[^{}]*\}/.exec(template);
  if (other !== null) {
    return `\`${other[0]}\` in \`path\` is not a placeholder; the part id is \`{part}\` (e.g. \`out/%Y-%m-%d/part-{part}.jsonl\`)`;
  }
  const name = template.slice(template.lastIndexOf('/') + 1);
  if (!name.includes('{part}')) {
    return 'with `rolling`, the file name in `path` needs `{part}` where the part id goes, e.g. `out/%Y-%m-%d/events-{part}.jsonl`';
  }
  return undefined;
}

const two = (n: number) => String(n).padStart(2, '0');

/** The name of part `part` of `template` opened at `time` (ms since the epoch). */
export function partName(template: string, time: number, part: string): string {
  const d = new Date(time);
  const fields: Record<string, string> = {
    Y: String(d.getUTCFullYear()),
    m: two(d.getUTCMonth() + 1),
    d: two(d.getUTCDate()),
    H: two(d.getUTCHours()),
    M: two(d.getUTCMinutes()),
    '%': '%',
  };
  return template.replace(TOKEN, (_, f: string) => fields[f] ?? '').replaceAll('{part}', part);
}

/** The time bucket of `time`: the template with only its time fields filled (parts of one bucket share it). */
export function bucketOf(template: string, time: number): string {
  return partName(template, time, '');
}

/**
 * The folder where a rolling sink of `template` keeps its parts until they are committed: a
 * hidden folder named after the template, in the deepest folder of the template without a time
 * field (renames from there to the final names stay on one file system). Readers of the output
 * never see it: it is hidden, and its files end in `.inprogress`.
 */
export function stagingDir(template: string): string {
  let root = dirname(template);
  while (root.includes('%') || root.includes('{part}')) root = dirname(root);
  // `node:crypto` is loaded here, not at start-up: only rolling sinks need it (~18 ms of CPU).
  const hash = process
    .getBuiltinModule('node:crypto')
    .createHash('sha256')
    .update(template)
    .digest('hex')
    .slice(0, 10);
  return join(root === '' ? '.' : root, `.sluice-parts-${hash}`);
}
