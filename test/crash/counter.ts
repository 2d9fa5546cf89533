/**
 * A keyed counting operator with snapshot/restore, for the crash test (used as a `module:`
 * step): each record `{seq, key}` becomes `{seq, key, n}` where `n` counts the records of `key`
 * so far, and at the end one `{key, total}` per key, sorted. Any lost, repeated or wrongly
 * restored record changes the output.
 */
import { batchOf } from '../../src/core/message.ts';
import type { Operator } from '../../src/core/stage.ts';
import { KeyedStateStore } from '../../src/state/keyed.ts';

const store = new KeyedStateStore();
const count = store.valueState<number>('count');

/** The operator (one instance per process: a pipeline module is loaded once). */
export const countByKey: Operator<Record<string, string>, unknown> = {
  async process(batch, out) {
    const records: unknown[] = [];
    for (const r of batch.records) {
      store.setCurrentKey(r.key as string);
      const n = (count.get() ?? 0) + 1;
      count.set(n);
      records.push({ seq: r.seq, key: r.key, n });
    }
    await out.emit(batchOf(records, batch.meta));
  },
  snapshot() {
    return store.snapshot();
  },
  restore(state) {
    store.restore(state);
  },
  async finish(out) {
    const totals = [...store.entries('count')]
      .map(([key, total]) => ({ key, total }))
      .sort((a, b) => String(a.key).localeCompare(String(b.key)));
    await out.emit(batchOf(totals));
  },
};
