/**
 * "Did you mean" suggestions for config messages: the closest known name by edit distance.
 */

/**
 * Edit distance between `a` and `b` (insertions, deletions, substitutions and swaps of two
 * neighbouring letters each cost 1), case-insensitive: `flushMs` and `flushms` are 0 apart.
 */
export function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y) return 0;
  const d: number[][] = [];
  for (let i = 0; i <= x.length; i++) d.push([i]);
  for (let j = 1; j <= y.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= x.length; i++) {
    const row = d[i] as number[];
    const up = d[i - 1] as number[];
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      let v = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) {
        v = Math.min(v, ((d[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = v;
    }
  }
  return (d[x.length] as number[])[y.length] as number;
}

/**
 * The candidate closest to `name`, if it is close enough to be a plausible typo (at most a
 * third of the longer name's letters differ, and at most 3), or a candidate that starts with
 * or contains `name`.
 *
 * @example
 * didYouMean('fiel', ['file', 'stdio']); // 'file'
 * didYouMean('kafka', ['file', 'stdio']); // undefined
 */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.min(3, Math.max(1, Math.floor(Math.max(name.length, best.length) / 3)));
  if (bestDistance <= limit) return best;
  if (name.length >= 3) {
    for (const c of candidates) if (c.toLowerCase().startsWith(name.toLowerCase())) return c;
  }
  return undefined;
}

/** `` `a`, `b` or `c` `` — a human list of choices in backticks. */
export function listChoices(choices: readonly string[], conjunction = 'or'): string {
  const quoted = choices.map((c) => `\`${c}\``);
  if (quoted.length <= 1) return quoted.join('');
  return `${quoted.slice(0, -1).join(', ')} ${conjunction} ${quoted.at(-1)}`;
}
