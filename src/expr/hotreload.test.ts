/**
 * A long run through `Pipeline` while the rule file changes 20 times (some changes broken):
 * every record is judged by exactly one rule-set version, none is lost or judged twice, and a
 * broken file never stops the flow.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Pipeline } from '../pipeline.ts';
import { CelMap, ruleVersionKey } from './cel-operators.ts';
import { CollectSink, memorySource } from './testing.test-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-expr-hot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('20 rule changes during a run: one version per record, no loss, broken files rejected', async () => {
  const file = join(dir, 'rules.yaml');
  const write = (text: string) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  // Version k computes `v: k`; a record whose id is a multiple of 13 fails under even k.
  const good = (k: number, declared: boolean) =>
    `${declared ? `version: ${k}\n` : ''}map:\n  fields:\n    v: '${k}'\n    check: '${k % 2 === 0 ? 'id % 13 == 0 ? missing : 1' : '1'}'\n`;
  const broken = [
    "map:\n  fields:\n    v: '1 +'\n", // syntax error
    "map:\n  fields:\n    v: '1'\nbogus: true\n", // unknown key
    "version: 1\nmap:\n  fields:\n    v: '1'\n", // version not newer
    'map:\n  fields:\n    v: \'"aaaa".matches("(a+)+b") ? 1 : 2\'\n', // pathological pattern
    'filter: x > 1\n', // no `map` part
  ];
  write(good(1, true));

  const records = Array.from({ length: 3000 }, (_, id) => ({ id }));
  const op = new CelMap({ rules: { file, pollInterval: 3_600_000 } });
  let changes = 0;
  let expectedRejects = 0;
  let lastGood = 1;
  let version = 1;
  const warnings: string[] = [];
  // Every 7th batch, change the file and have it judged (what a poll tick does); the batches
  // already in flight are still judged by whichever set was active when they were processed.
  const between = async (batch: number): Promise<void> => {
    if (batch === 0 || batch % 7 !== 0 || changes >= 20) return;
    changes++;
    if (changes % 4 === 0) {
      write(broken[(changes / 4 - 1) % broken.length] as string);
      expectedRejects++;
    } else {
      version++;
      write(good(version, version % 2 === 0));
      lastGood = version;
    }
    await op.reload();
  };
  const out = new CollectSink();
  const dlq = new CollectSink();
  const p = new Pipeline('hot');
  p.from(memorySource(records, 10, between))
    .via(op, { name: 'enrich' })
    .to(out, { buffer: { size: 2 } });
  p.dlq(dlq);
  const summary = await p.run({ log: { info() {}, warn: (m) => warnings.push(m), error() {} } }).done;

  assert.equal(summary.state, 'succeeded');
  assert.equal(changes, 20);
  assert.equal(op.ruleRejects, expectedRejects);
  assert.equal(op.ruleRejects, 5);
  assert.equal(op.ruleReloads, 15);
  assert.equal(op.ruleVersion, lastGood);
  assert.equal(warnings.filter((w) => w.startsWith('Rejected a new rule set')).length, 5);

  // No record lost or judged twice.
  const ids = [...out.records, ...dlq.letters.map((l) => l.record)]
    .map((r) => (r as { id: number }).id)
    .sort((a, b) => a - b);
  assert.deepEqual(
    ids,
    records.map((r) => r.id),
  );

  // Every output record carries the version that computed it, and versions only grow.
  const key = ruleVersionKey('enrich');
  let prev = 0;
  const versionsSeen = new Set<number>();
  out.records.forEach((r, i) => {
    const v = out.meta[i]?.attributes?.[key];
    assert.equal(typeof v, 'number');
    assert.equal((r as { v: number }).v, v, `record ${(r as { id: number }).id}`);
    assert.ok((v as number) >= prev, 'versions never go back');
    prev = v as number;
    versionsSeen.add(v as number);
  });
  assert.ok(versionsSeen.size >= 12, `only ${versionsSeen.size} versions judged records`);
  // Dead letters come only from versions whose rules fail for multiples of 13.
  assert.ok(dlq.letters.length > 0);
  for (const l of dlq.letters) assert.equal((l.record as { id: number }).id % 13, 0);
});
