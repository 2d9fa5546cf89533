/**
 * `npx node bench/window-path.ts [--file F] [--rounds 7] [--src DIR] [--fresh-keys]`: the window
 * operator's per-record path alone, as `npm run bench -- vs-go` runs it through the CLI (tumbling
 * 1m by (country, event_type), count + exact sum of `amount`), without the decoder, the file
 * source or start-up around it — so a change to the window shows in CPU time that the decoder's
 * ~0.4 s and start-up's variance would hide.
 *
 * The events of the vs-go CSV (default: the 200 MB file `npm run bench -- vs-go` generated; run
 * that first) are made once, up front, as the CSV decoder's projection gives them: `ts` as epoch
 * ms, `country` and `event_type` interned (`--fresh-keys`: a new string per record, as a decoder
 * that does not intern gives them), `amount` a string, the other fields `''`, and a
 * `{ source, position }` meta per record, in batches of 1024. Each round then pushes every batch
 * through a fresh window operator (`OperatorHarness`) and ends the input, then writes every
 * result with `toJsonLine`, as the `jsonl` sink does. Prints one JSON line: the CPU ms (user +
 * system) of the window and of the JSON of each round, their medians over the rounds after the
 * first two (warm-up), and the MD5 of the JSON lines (equal between builds, or a build changed
 * the results). `--src DIR` loads Sluice's `src` from another checkout, to compare builds:
 * alternate runs under `flock /tmp/sluice-bench.lock`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { numberFlag, stringFlag } from './child.ts';
import { median } from './run.ts';

const argv = process.argv.slice(2);
const file = stringFlag(argv, '--file') ?? '/tmp/sluice-bench-vs-go/events-v1-200mb.csv';
const rounds = numberFlag(argv, '--rounds') ?? 7;
const src = resolve(stringFlag(argv, '--src') ?? join(import.meta.dirname, '..', 'src'));
const freshKeys = argv.includes('--fresh-keys');
if (!existsSync(file)) {
  console.error(
    `window-path: no input file ${file}; run \`npm run bench -- vs-go\` once to generate it, or pass --file`,
  );
  process.exit(2);
}
if (!(rounds >= 3)) {
  console.error(`window-path: --rounds must be at least 3 (the first two are warm-up), got ${rounds}`);
  process.exit(2);
}

const load = (m: string) => import(pathToFileURL(join(src, m)).href);
const { windowOperator } = await load('time/window.ts');
const { OperatorHarness } = await load('operators/harness.ts');
const { toJsonLine } = await load('formats/json.ts');

/** The CSV's events as the decoder's projection gives them (see the module comment). */
function events(text: string): Record<string, unknown>[] {
  const header = text.slice(0, text.indexOf('\n')).split(',');
  const want = ['ts', 'country', 'event_type', 'amount'].map((f) => header.indexOf(f));
  if (want.some((i) => i === -1 || i > 9))
    throw new Error(
      `window-path: ${file} lacks one of ts, country, event_type, amount in its first ten columns`,
    );
  const [its, icountry, itype, iamount] = want as [number, number, number, number];
  const interned = new Map<string, string>();
  const key = (s: string): string => {
    if (freshKeys) return ` ${s}`.slice(1);
    let v = interned.get(s);
    if (v === undefined) {
      interned.set(s, s);
      v = s;
    }
    return v;
  };
  const out: Record<string, unknown>[] = [];
  for (let p = text.indexOf('\n') + 1; p < text.length; ) {
    const nl = text.indexOf('\n', p);
    const end = nl === -1 ? text.length : nl;
    // The columns the window reads come before the first quoted one (`note`).
    const f = text.slice(p, end).split(',', 10);
    p = end + 1;
    out.push({
      id: '',
      ts: Date.parse(f[its] as string),
      country: key(f[icountry] as string),
      event_type: key(f[itype] as string),
      status: '',
      channel: '',
      amount: f[iamount],
      fee: '',
      qty: '',
      sku: '',
      note: '',
      user: '',
    });
  }
  return out;
}

const records = events(readFileSync(file, 'latin1'));
const B = 1024;
const batches: { records: Record<string, unknown>[]; meta: unknown[] }[] = [];
for (let i = 0; i < records.length; i += B) {
  const rs = records.slice(i, i + B);
  batches.push({
    records: rs,
    meta: rs.map((_, j) => ({ source: 'input', position: { file, line: i + j + 2, offset: (i + j) * 130 } })),
  });
}
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const windowMs: number[] = [];
const jsonMs: number[] = [];
let md5 = '';
for (let r = 0; r < rounds; r++) {
  const op = windowOperator({
    key: ['country', 'event_type'],
    time: 'ts',
    tumbling: '1m',
    watermark: { maxOutOfOrder: '5s' },
    aggregate: { count: 'count()', amount: 'sum(amount)' },
  });
  const h = new OperatorHarness(op);
  await h.open();
  const t0 = cpuMs();
  for (const b of batches) await h.process(b.records, b.meta);
  await h.finish();
  const t1 = cpuMs();
  const lines: string[] = [];
  for (const o of h.records()) lines.push(toJsonLine(o));
  const t2 = cpuMs();
  md5 = createHash('md5').update(lines.join('\n')).digest('hex');
  windowMs.push(Math.round(t1 - t0));
  jsonMs.push(Math.round(t2 - t1));
}
console.log(
  JSON.stringify({
    src,
    records: records.length,
    freshKeys,
    windowMedianMs: median(windowMs.slice(2)),
    jsonMedianMs: median(jsonMs.slice(2)),
    windowMs,
    jsonMs,
    md5,
  }),
);
