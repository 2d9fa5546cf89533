/**
 * What partition scope (`checkpoint: { scope: partition }`, `partitionScoped`) costs a keyed
 * window: the same tumbling count window over records from six Kafka-like partitions, called
 * directly (no runtime, no broker), plain vs one instance per partition. Runs interleaved,
 * medians; ends with `ratio partition-scope plain/partitioned X` (above 1: plain is faster).
 *
 *   npx node bench/partition-scope.ts [--records 600000] [--rounds 5]
 *
 * Manual (not registered in `bench/run.ts`).
 */

import { ManualClock } from '../src/core/clock.ts';
import { batchOf, type RecordMeta } from '../src/core/message.ts';
import { type Emitter, type Operator, runScope, type StageContext } from '../src/core/stage.ts';
import { partitionScoped } from '../src/operators/partitioned.ts';
import { windowOperator } from '../src/time/window.ts';
import { numberFlag } from './child.ts';
import { median } from './run.ts';

const RECORDS = numberFlag(process.argv, '--records') ?? 600_000;
const ROUNDS = numberFlag(process.argv, '--rounds') ?? 5;
const PARTITIONS = 6;
const KEYS = 60;
const BATCH = 1024;

interface Event {
  key: string;
  ts: number;
}

// Batches as the Kafka source makes them: runs of one partition, each key in one partition.
const batches: { records: Event[]; meta: RecordMeta[] }[] = [];
{
  let records: Event[] = [];
  let meta: RecordMeta[] = [];
  const offsets = new Array(PARTITIONS).fill(0) as number[];
  for (let i = 0; i < RECORDS; i++) {
    const run = Math.floor(i / 100);
    const partition = run % PARTITIONS;
    const key = (i % (KEYS / PARTITIONS)) * PARTITIONS + partition;
    const offset = offsets[partition] as number;
    offsets[partition] = offset + 1;
    records.push({ key: `k${key}`, ts: offset * 10 });
    meta.push({ source: 'input', position: { topic: 't', partition, offset } });
    if (records.length === BATCH) {
      batches.push({ records, meta });
      records = [];
      meta = [];
    }
  }
  if (records.length > 0) batches.push({ records, meta });
}

const make = (): Operator =>
  windowOperator<Event>({
    key: 'key',
    time: 'ts',
    tumbling: 1000,
    watermark: { maxOutOfOrder: 0 },
    aggregate: { n: 'count()' },
  }) as Operator;

async function once(op: Operator): Promise<{ seconds: number; results: number }> {
  let results = 0;
  const out: Emitter<unknown> = {
    async emit(b) {
      results += b.records.length;
    },
    async signal() {},
  };
  const ctx: StageContext = {
    name: 'win',
    signal: new AbortController().signal,
    stopSignal: new AbortController().signal,
    checkpointing: false,
    runScoped: runScope(),
    clock: new ManualClock(0),
    log: { info() {}, warn() {}, error() {} },
    deadLetter() {},
  };
  await op.open?.(ctx);
  const t = performance.now();
  for (const b of batches) await op.process(batchOf(b.records, b.meta), out);
  await op.finish?.(out);
  return { seconds: (performance.now() - t) / 1000, results };
}

const rates: Record<'plain' | 'partitioned', number[]> = { plain: [], partitioned: [] };
let check: number | undefined;
for (let r = 0; r < ROUNDS; r++) {
  for (const name of ['plain', 'partitioned'] as const) {
    const { seconds, results } = await once(name === 'plain' ? make() : partitionScoped(make));
    if (check === undefined) check = results;
    else if (check !== results) throw new Error(`${name} made ${results} results, not ${check}`);
    rates[name].push(RECORDS / seconds);
  }
}
for (const [name, xs] of Object.entries(rates)) {
  console.log(
    `${name.padEnd(12)} median ${Math.round(median(xs)).toLocaleString('en-US')} rec/s  (min ${Math.round(Math.min(...xs)).toLocaleString('en-US')}, max ${Math.round(Math.max(...xs)).toLocaleString('en-US')})  ${check} results`,
  );
}
console.log(
  `ratio partition-scope plain/partitioned ${(median(rates.plain) / median(rates.partitioned)).toFixed(2)}`,
);
