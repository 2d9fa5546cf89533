/**
 * Rebalances without duplicates (issue "Production-ready connections and long-running jobs",
 * section 3) under the classic protocol, against the real broker: the measurement of
 * `rebalance-scenario.test-helpers.ts` (a member joins mid-run, then leaves), with records passed on in
 * partition order, with `parallel` steps, and with steps stuck past the rebalance.
 */
import { test } from 'node:test';
import { measureRebalance } from './rebalance-scenario.test-helpers.ts';

for (const steps of ['none', 'parallel', 'stuck'] as const)
  for (const variant of ['no checkpoints', 'checkpoints'] as const) {
    test(
      `a member joining and one leaving mid-run re-deliver ${variant === 'checkpoints' ? 'nothing (checkpoints, exactly-once sink)' : 'under 1 % of the records (no checkpoints)'}${steps === 'parallel' ? ', with `parallel` steps' : steps === 'stuck' ? ', with `parallel` steps stuck past the rebalance' : ''}`,
      {
        timeout: 300_000,
        // With checkpoints and no steps this failed in 2 of 3 CI runs under load (Dec 7): once
        // member b ended on its idle timeout before it was stopped (b's idle timeout is 90 s), once
        // after ~70 s without logs. Looped, it failed three more ways: b read nothing (a had read
        // the partitions it handed over to their end; now most of the input comes after b owns
        // partitions); a failed after 60 s without records, as b's draining stop had committed
        // the group's offsets past the partitions' stored state in its final transaction (fixed in
        // `sink.ts`; likely the ~70 s failure); and, made on purpose, a stopped member waited for
        // an open transaction before loading a partition (fixed; `load-stop.kafka.it.test.ts`).
        // With checkpoints this once gave 0, 3,736 (12.45 %) and 0 of 30,000 records twice: the new
        // owner of a handed-over partition read it again from its stored state while the old owner's
        // open transaction with the same records still committed. Now the old owner takes a
        // checkpoint (transaction committed, state stored) before giving partitions up.
      },
      () => measureRebalance({ protocol: 'classic', steps, variant }),
    );
  }
