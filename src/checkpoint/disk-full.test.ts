/**
 * Disk full on the checkpoint store. Before: LMDB's failed commit crashed Node with an unhandled
 * rejection and a raw stack. Now the write fails with one `SLUICE_DISK_FULL` error (the store, its
 * folder, the errno, what to do), the coordinator stops the run with it, and the last complete
 * checkpoint stays usable.
 *
 * Two reproductions, neither fills the real disk: a fault-injecting backend whose write fails as
 * the LMDB backend does once the disk is full, and a real run in a child process under
 * `ulimit -f` with SIGXFSZ ignored, where writes past the limit fail with EFBIG (which LMDB, seeing
 * a short write, reports as EIO) — the same path a full disk takes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../core/clock.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { diskErrorCode, diskFull, lmdbBackend, memoryBackend, type StateBackend } from '../state/backend.ts';
import { CheckpointCoordinator } from './coordinator.ts';
import { CheckpointStore } from './store.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'sluice-disk-full-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A backend whose writes fail as a full disk makes the LMDB backend fail, from write `failFrom` on. */
function fillingBackend(failFrom: number): StateBackend {
  const inner = memoryBackend();
  let writes = 0;
  return {
    ...inner,
    async write(entries) {
      if (++writes >= failFrom) throw diskFull('/data/.sluice/job/store', 'ENOSPC', 4096, 10_000);
      return inner.write(entries);
    },
  };
}

const quiet = { info() {}, warn() {}, error() {} };

describe('disk full on the checkpoint store', () => {
  it('stops the run with one clear error and keeps the last complete checkpoint', async () => {
    const clock = new ManualClock(0);
    // Writes 1–2 (blobs and metadata of checkpoint 1) and 3 (its prune, nothing to drop: skipped) succeed.
    const store = new CheckpointStore(fillingBackend(3));
    const c = new CheckpointCoordinator({ store, intervalMs: 0, everyRecords: 10, clock, log: quiet });
    await c.restore();
    const commits: number[] = [];
    c.begin({ sources: ['in'], sinks: ['out'], commit: async (d) => void commits.push(d.id) });
    for (const id of [1, 2]) {
      assert.equal(c.barrierDue('in', 10), id);
      c.sourceBarrier(id, 'in', { line: id * 10 });
      c.operatorSnapshot(id, 'op', { n: id });
      c.sinkAcked(id, 'out', { length: id });
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(commits, [1], 'checkpoint 2 is neither stored nor committed');
    assert.throws(
      () => c.barrierDue('in', 10),
      (err: unknown) => {
        assert.ok(err instanceof SluiceError && err.code === ErrorCode.DISK_FULL, String(err));
        assert.match(
          err.message,
          /^checkpoint 2 could not be stored: writing the state store `\/data\/.sluice\/job\/store`: the disk is full \(ENOSPC\), 4 KiB free for a 10 KiB write; free space there or set checkpoint `dir` to another disk, then run again: it resumes from the last complete checkpoint$/,
        );
        return true;
      },
    );
    await assert.rejects(c.finish('failed'), /checkpoint 2 could not be stored/);
    assert.equal((await store.latest())?.id, 1, 'checkpoint 1 is still the one to resume from');
  });

  it('knows the errors a full disk gives, by name and by the number LMDB reports', () => {
    for (const [code, want] of [
      ['ENOSPC', 'ENOSPC'],
      [28, 'ENOSPC'],
      [27, 'EFBIG'],
      [5, 'EIO'],
      ['EDQUOT', 'EDQUOT'],
      ['EACCES', undefined],
      [undefined, undefined],
    ] as const)
      assert.equal(diskErrorCode({ code }), want, String(code));
  });

  it('the embedded store turns a write the file-size limit cuts short into SLUICE_DISK_FULL (child under ulimit -f)', async () => {
    const dir = tmp();
    const script = join(dir, 'fill.ts');
    // 64 KiB of file size allowed: LMDB's first pages fit, a 1 MiB value does not.
    writeFileSync(
      script,
      `import { lmdbBackend } from ${JSON.stringify(new URL('../state/backend.ts', import.meta.url).pathname)};
const b = await lmdbBackend({ dir: ${JSON.stringify(join(dir, 'store'))} });
await b.write(new Map([['small', new Uint8Array(10)]]));
try {
  await b.write(new Map([['big', new Uint8Array(1 << 20).fill(7)]]));
  console.log('WROTE');
} catch (err) {
  console.log(err.code, err.message);
}
console.log('SMALL', (await b.read('small'))?.length);
await b.close();
`,
    );
    const r = spawnSync('sh', ['-c', `trap '' XFSZ; ulimit -f 64; exec "${process.execPath}" "${script}"`], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^SLUICE_DISK_FULL writing the state store `.*store`: .*(EIO|EFBIG|ENOSPC).*then run again/m,
    );
    assert.match(r.stdout, /^SMALL 10$/m, 'what was committed before is intact');
    assert.doesNotMatch(r.stderr, /unhandled|Commit failed/i);
    // And without the limit, the same store takes the write.
    const b = await lmdbBackend({ dir: join(dir, 'store') });
    await b.write(new Map([['big', new Uint8Array(1 << 20)]]));
    assert.equal((await b.read('big'))?.length, 1 << 20);
    await b.close();
  });
});
