/**
 * Python's `decimal` module as the reference for Sluice's decimals: {@link pythonDecimal} runs
 * one `python3` process over many cases and returns its answers, each as the fixed-point text
 * Sluice prints (`format(d, 'f')`, no exponent, a negative zero without its sign).
 *
 * A case is a line of tab-separated words: `parse A`, `add A B`, `sub A B`, `mul A B`,
 * `div A B SCALE` (quotient rounded half to even to SCALE digits), `round A SCALE`, `cmp A B`
 * (-1, 0 or 1), `sum SCALE A…` / `mean SCALE A…` (sum at the largest scale; mean = sum / count
 * rounded half to even to the largest scale plus SCALE digits). Precision 1000 digits, so no
 * intermediate result is rounded. A number with a positive exponent (`1.5e3`) is read at
 * exponent 0 (1500), as Sluice reads it: a Sluice decimal's scale is never negative.
 */
import { spawnSync } from 'node:child_process';

const SCRIPT = String.raw`
import sys
from decimal import Decimal, getcontext, ROUND_HALF_EVEN
getcontext().prec = 1000
def out(d):
    s = format(d, 'f')
    if d == 0 and s.startswith('-'):
        s = s[1:]
    return s
def D(text):
    # Sluice's scale is never negative: 1.5e3 is 1500 at scale 0, as Python's 1500.
    d = Decimal(text)
    return d.quantize(Decimal(1)) if d.as_tuple().exponent > 0 else d
def q(d, scale):
    return d.quantize(Decimal(1).scaleb(-int(scale)), rounding=ROUND_HALF_EVEN)
res = []
for line in sys.stdin.read().split('\n'):
    if not line:
        continue
    w = line.split('\t')
    op = w[0]
    if op == 'parse': r = out(D(w[1]))
    elif op == 'add': r = out(D(w[1]) + D(w[2]))
    elif op == 'sub': r = out(D(w[1]) - D(w[2]))
    elif op == 'mul': r = out(D(w[1]) * D(w[2]))
    elif op == 'div': r = out(q(D(w[1]) / D(w[2]), w[3]))
    elif op == 'round': r = out(q(D(w[1]), w[2]))
    elif op == 'cmp': r = str(int(D(w[1]).compare(D(w[2]))))
    elif op in ('sum', 'mean'):
        xs = [D(x) for x in w[2:]]
        scale = max(-x.as_tuple().exponent for x in xs)
        total = q(sum(xs, Decimal(0)), scale)
        r = out(total) if op == 'sum' else out(q(total / len(xs), scale + int(w[1])))
    else: raise SystemExit('unknown case ' + op)
    res.append(r)
sys.stdout.write('\n'.join(res))
`;

/** Python's answer to each case (see the module comment), in order. Throws when python3 fails. */
export function pythonDecimal(cases: readonly string[]): string[] {
  const r = spawnSync('python3', ['-c', SCRIPT], {
    input: cases.join('\n'),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`python3 failed (${r.status}): ${r.stderr}`);
  const lines = r.stdout.split('\n');
  if (lines.length !== cases.length)
    throw new Error(`python3 answered ${lines.length} of ${cases.length} cases`);
  return lines;
}
