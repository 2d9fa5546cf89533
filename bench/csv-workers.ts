/**
 * `npm run bench -- csv-workers`: does parsing CSV in `worker_threads` pay on this machine? Three
 * ways to turn the `csv` benchmark's file into row objects on the main thread (where the rest of a
 * pipeline runs), each touching a field of every row:
 *
 * - `main-thread`: the Sluice CsvDecoder on the main thread (what the file source does).
 * - `workers-objects-N`: N workers run the CsvDecoder on chunks cut at row boundaries (bytes
 *   transferred, not copied) and post back arrays of row objects, which the main thread receives
 *   in order — the structured clone of an object graph.
 * - `workers-offsets-N`: N workers only find the field boundaries of their chunk and post back the
 *   bytes and an Int32Array of offsets (both transferred); the main thread builds the strings
 *   (latin1 slices) and the objects. This is an upper bound for that design: it skips what the
 *   real decoder does besides slicing (UTF-8 validation and decoding, interning, error rows,
 *   limits, line numbers), and it cuts chunks at the last newline, which is right only because this
 *   file has no newline inside a quoted field (a real splitter tracks quote parity and must verify
 *   its guess).
 *
 * Each contender runs in its own child process, several rounds interleaved; medians of MB/s and
 * peak RSS. Ends with `ratio csv-workers <contender>/main-thread X` lines (above 1: faster than
 * one thread).
 *
 * Run alone: `npx node bench/csv-workers.ts --size-mb 200 --rounds 5`.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CsvDecoder, type CsvRow } from '../src/formats/csv/index.ts';
import { measureRounds, numberFlag, printTable, reportRun } from './child.ts';
import { generateCsv } from './csv.ts';

/** Bytes per chunk handed to a worker (and per read for the main-thread contender). */
const CHUNK = 1 << 20;
/** Chunks in flight per worker: enough to keep each busy while the main thread drains results. */
const IN_FLIGHT = 2;

let checksum = 0;

/** Reads `file` in chunks of about CHUNK bytes, each ending at the last newline (see the file comment). */
function* rowChunks(file: string): Generator<Buffer> {
  const fd = openSync(file, 'r');
  let carry = Buffer.alloc(0);
  try {
    for (;;) {
      const buf = Buffer.allocUnsafeSlow(CHUNK);
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      const data = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      const cut = data.lastIndexOf(10) + 1;
      carry = Buffer.from(data.subarray(cut));
      if (cut > 0) yield data.subarray(0, cut);
    }
    if (carry.length > 0) yield carry;
  } finally {
    closeSync(fd);
  }
}

/** A fresh ArrayBuffer holding exactly `b` (transferable; `b` may be a view into a bigger one). */
function own(b: Buffer): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b.buffer as ArrayBuffer;
  const ab = new ArrayBuffer(b.byteLength);
  new Uint8Array(ab).set(b);
  return ab;
}

// ---- worker side ----------------------------------------------------------------------------

/** Field boundaries of every row of `s`: start, end (bit 30 set: has `""` escapes), -1 ends a row. */
function scanOffsets(s: string): Int32Array {
  const len = s.length;
  let offs = new Int32Array((len >> 3) + 64);
  let k = 0;
  let p = 0;
  let nd = -1;
  let nl = -1;
  const push = (v: number) => {
    if (k === offs.length) {
      const bigger = new Int32Array(offs.length * 2);
      bigger.set(offs);
      offs = bigger;
    }
    offs[k++] = v;
  };
  while (p < len) {
    for (;;) {
      if (s.charCodeAt(p) === 34) {
        let q = p + 1;
        let esc = 0;
        for (;;) {
          q = s.indexOf('"', q);
          if (s.charCodeAt(q + 1) === 34) {
            q += 2;
            esc = 1;
            continue;
          }
          break;
        }
        push(p + 1);
        push(q | (esc << 30));
        p = q + 1;
      } else {
        if (nd < p) {
          nd = s.indexOf(',', p);
          if (nd === -1) nd = len;
        }
        if (nl < p) {
          nl = s.indexOf('\n', p);
          if (nl === -1) nl = len;
        }
        const e = Math.min(nd, nl);
        push(p);
        push(e);
        p = e;
      }
      if (s.charCodeAt(p) === 44) {
        p++;
        continue;
      }
      p++;
      push(-1);
      break;
    }
  }
  return offs.subarray(0, k);
}

function workerMain(): void {
  const mode = (workerData as { mode: string }).mode;
  const names = (workerData as { names: string[] }).names;
  const port = parentPort!;
  const dec = new CsvDecoder({ header: false, columns: names });
  port.on('message', (m: { id: number; bytes: ArrayBuffer }) => {
    if (mode === 'objects') {
      const rows: CsvRow[] = [];
      const sink = { record: (r: CsvRow) => rows.push(r), invalid() {} };
      dec.write(new Uint8Array(m.bytes), sink);
      port.postMessage({ id: m.id, rows });
    } else {
      const s = Buffer.from(m.bytes).toString('latin1');
      const offs = scanOffsets(s);
      const copy = offs.slice();
      port.postMessage({ id: m.id, bytes: m.bytes, offs: copy.buffer }, [m.bytes, copy.buffer]);
    }
  });
}

// ---- main side ------------------------------------------------------------------------------

function headerOf(file: string): { names: string[]; length: number } {
  const fd = openSync(file, 'r');
  const b = Buffer.alloc(4096);
  readSync(fd, b, 0, 4096, 0);
  closeSync(fd);
  const nl = b.indexOf(10);
  return { names: b.toString('latin1', 0, nl).split(','), length: nl + 1 };
}

// The `csv` bench's `sluice` contender, but read synchronously in 64 KiB pieces: the baseline the
// worker designs are compared against, measured in this process like them.
function mainThread(file: string): number {
  let n = 0;
  const dec = new CsvDecoder();
  const sink = {
    record(r: CsvRow) {
      checksum += (r as Record<string, string>).status!.length;
      n++;
    },
    invalid() {},
  };
  const fd = openSync(file, 'r');
  for (;;) {
    const buf = Buffer.allocUnsafe(64 * 1024);
    const got = readSync(fd, buf, 0, buf.length, null);
    if (got === 0) break;
    dec.write(buf.subarray(0, got), sink);
  }
  closeSync(fd);
  dec.end(sink);
  return n;
}

async function withWorkers(file: string, mode: 'objects' | 'offsets', count: number): Promise<number> {
  const { names, length } = headerOf(file);
  const make = new Function(
    'v',
    `return {${names.map((x, i) => `${JSON.stringify(x)}: v[${i}]`).join(', ')}};`,
  ) as (v: string[]) => Record<string, string>;
  const self = fileURLToPath(import.meta.url);
  const workers = Array.from({ length: count }, () => new Worker(self, { workerData: { mode, names } }));
  const results = new Map<number, unknown>();
  let wake: (() => void) | undefined;
  for (const w of workers)
    w.on('message', (m: { id: number }) => {
      results.set(m.id, m);
      wake?.();
    });
  let n = 0;
  const vals: string[] = [];
  const consume = (m: { rows?: CsvRow[]; bytes?: ArrayBuffer; offs?: ArrayBuffer }) => {
    if (m.rows !== undefined) {
      for (const r of m.rows) {
        checksum += (r as Record<string, string>).status!.length;
        n++;
      }
      return;
    }
    const s = Buffer.from(m.bytes!).toString('latin1');
    const offs = new Int32Array(m.offs!);
    let f = 0;
    for (let i = 0; i < offs.length; ) {
      const a = offs[i++]!;
      if (a === -1) {
        checksum += make(vals).status!.length;
        n++;
        f = 0;
        continue;
      }
      const b = offs[i++]!;
      let v = s.slice(a, b & 0x3fffffff);
      if (b & (1 << 30)) v = v.replaceAll('""', '"');
      vals[f++] = v;
    }
  };
  let sent = 0;
  let next = 0;
  const drain = async (limit: number) => {
    while (sent - next > limit) {
      const r = results.get(next);
      if (r === undefined) {
        await new Promise<void>((res) => {
          wake = res;
        });
        wake = undefined;
        continue;
      }
      results.delete(next++);
      consume(r as Parameters<typeof consume>[0]);
    }
  };
  let first = true;
  for (const chunk of rowChunks(file)) {
    const body = first ? chunk.subarray(length) : chunk;
    first = false;
    const bytes = own(body);
    workers[sent % count]!.postMessage({ id: sent, bytes }, [bytes]);
    sent++;
    await drain(count * IN_FLIGHT);
  }
  await drain(0);
  await Promise.all(workers.map((w) => w.terminate()));
  return n;
}

const CONTENDERS = [
  'main-thread',
  'workers-objects-1',
  'workers-objects-2',
  'workers-offsets-1',
  'workers-offsets-2',
] as const;

function contender(name: string, file: string): number | Promise<number> {
  if (name === 'main-thread') return mainThread(file);
  const [, mode, count] = name.split('-');
  return withWorkers(file, mode as 'objects' | 'offsets', Number(count));
}

/** Runs every contender `rounds` times, prints the table and the ratio lines. */
export async function runCsvWorkersBench(sizeMb: number, rounds: number): Promise<string[]> {
  const file = generateCsv(sizeMb);
  const bytes = statSync(file).size;
  const self = fileURLToPath(import.meta.url);
  const res = measureRounds(self, file, bytes, CONTENDERS, rounds, true);
  console.log(`CSV in workers: ${file} (${(bytes / 1e6).toFixed(0)} MB), ${rounds} rounds, medians`);
  printTable(
    CONTENDERS.map((name) => ({ name, ...res.get(name)! })),
    'rows',
    20,
  );
  const base = res.get('main-thread')!.mbPerSec;
  const ratios = CONTENDERS.slice(1).map(
    (n) => `ratio csv-workers ${n}/main-thread ${(res.get(n)!.mbPerSec / base).toFixed(2)}`,
  );
  for (const l of ratios) console.log(l);
  return ratios;
}

if (!isMainThread) {
  workerMain();
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child')
    await reportRun(
      () => contender(argv[1]!, argv[2]!),
      () => checksum,
    );
  else await runCsvWorkersBench(numberFlag(argv, '--size-mb') ?? 200, numberFlag(argv, '--rounds') ?? 5);
}
