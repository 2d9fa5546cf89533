/**
 * The conformance suite every {@link StateBackend} passes (the contract in
 * `src/state/backend.ts`): atomic batches — including one that fails part-way where the backend
 * lets a test provoke it —, deletes, overwrites, binary values with zero bytes, a 5 MB value,
 * prefix listing in UTF-8 byte order with non-ASCII keys, overlapping writes applied in call
 * order, separate namespaces, and (for persistent backends) data seen again after reopening.
 *
 * Call {@link stateBackendContract} inside a test file; it declares one `describe` block.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { StateBackend } from '../../src/state/backend.ts';

/** A backend set up so that writing `batch` fails part-way. */
export interface FailingWrite {
  readonly backend: StateBackend;
  readonly batch: ReadonlyMap<string, Uint8Array | null>;
  /** Why it fails (asserted against the rejection). */
  readonly error: RegExp;
  /** Undoes the setup, so that the same backend writes again. */
  readonly heal?: () => Promise<void>;
}

/** What the suite needs from one backend. */
export interface ContractTarget {
  readonly name: string;
  /** Opens the store named `ns` (a namespace, a folder…); the same `ns` opens the same data. */
  open(ns: string): Promise<StateBackend>;
  /** False for stores that forget everything on close (memory): skips the reopen test. */
  readonly persistent: boolean;
  /**
   * Opens store `ns` (already holding data) in a way that makes writing the returned batch
   * fail after part of it could have been applied; absent when a backend cannot be made to fail.
   */
  readonly failingWrite?: ((ns: string) => Promise<FailingWrite>) | undefined;
  /** Removes what a test left in store `ns` (tables rows, keys, folders). */
  cleanup?(ns: string): Promise<void>;
}

const bytes = (...xs: number[]) => new Uint8Array(xs);
const text = (s: string) => Buffer.from(s);

async function readText(b: StateBackend, key: string): Promise<string | undefined> {
  const v = await b.read(key);
  return v === undefined ? undefined : Buffer.from(v).toString();
}

/** Declares the conformance tests of `target`. */
export function stateBackendContract(target: ContractTarget): void {
  describe(`StateBackend contract: ${target.name}`, () => {
    const used: string[] = [];
    const open: StateBackend[] = [];
    const fresh = async (): Promise<[StateBackend, string]> => {
      const ns = `contract-${randomUUID().slice(0, 12)}`;
      used.push(ns);
      const b = await target.open(ns);
      open.push(b);
      return [b, ns];
    };
    after(async () => {
      for (const b of open) await b.close();
      for (const ns of used) await target.cleanup?.(ns);
    });

    it('writes, overwrites and deletes; a missing key reads as undefined', async () => {
      const [b] = await fresh();
      assert.equal(await b.read('a'), undefined);
      await b.write(
        new Map([
          ['a', text('1')],
          ['b', text('2')],
        ]),
      );
      assert.equal(await readText(b, 'a'), '1');
      await b.write(
        new Map<string, Uint8Array | null>([
          ['a', text('one')],
          ['b', null],
          ['never-there', null],
        ]),
      );
      assert.equal(await readText(b, 'a'), 'one');
      assert.equal(await b.read('b'), undefined);
      assert.deepEqual(await b.keys(''), ['a']);
      await b.write(new Map());
      assert.deepEqual(await b.keys(''), ['a']);
      // The empty key with an empty value is an entry like any other.
      await b.write(new Map([['', new Uint8Array(0)]]));
      assert.deepEqual(await b.keys(''), ['', 'a']);
      assert.equal((await b.read(''))?.length, 0);
    });

    it('keeps binary values exactly: zero bytes, all 256 byte values, empty, and views into larger buffers', async () => {
      const [b] = await fresh();
      const all = new Uint8Array(256).map((_, i) => i);
      const backing = bytes(9, 9, 0, 1, 0, 9, 9);
      await b.write(
        new Map([
          ['zeros', bytes(0, 0, 0)],
          ['all', all],
          ['empty', new Uint8Array(0)],
          ['view', backing.subarray(2, 5)],
        ]),
      );
      backing.fill(7); // the store must have copied the bytes
      assert.deepEqual([...((await b.read('zeros')) ?? [])], [0, 0, 0]);
      assert.deepEqual([...((await b.read('all')) ?? [])], [...all]);
      const empty = await b.read('empty');
      assert.ok(empty !== undefined, 'an empty value is a value, not a missing key');
      assert.equal(empty.length, 0);
      assert.deepEqual([...((await b.read('view')) ?? [])], [0, 1, 0]);
    });

    it('stores and returns a 5 MB value', async () => {
      const [b] = await fresh();
      const big = Buffer.alloc(5 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2_654_435_761) >>> 0, i);
      await b.write(new Map([['big', big]]));
      const got = await b.read('big');
      assert.ok(got !== undefined);
      assert.equal(got.length, big.length);
      assert.ok(Buffer.from(got).equals(big), 'the 5 MB value came back different');
    });

    it('takes 200 000 entries in one write, and deletes them in one write', async () => {
      const [b] = await fresh();
      const keys = Array.from({ length: 200_000 }, (_, i) => `many/${String(i).padStart(6, '0')}`);
      await b.write(new Map(keys.map((k, i) => [k, bytes(i & 255, (i >> 8) & 255)])));
      const listed = await b.keys('many/');
      assert.equal(listed.length, keys.length);
      assert.equal(listed[123_456], 'many/123456');
      assert.deepEqual([...((await b.read('many/199999')) ?? [])], [199_999 & 255, (199_999 >> 8) & 255]);
      await b.write(new Map(keys.map((k) => [k, null])));
      assert.deepEqual(await b.keys('many/'), []);
    });

    it('lists a prefix in ascending UTF-8 byte order, non-ASCII keys included', async () => {
      const [b] = await fresh();
      // Byte order, written out (UTF-16 order would put the emoji, D83D…, before U+FFFD).
      const expected = [
        'p/',
        'p/A',
        'p/Z',
        'p/a',
        'p/a/b',
        'p/z',
        'p/~',
        'p/\u007f',
        'p/\u00e9', // C3 A9
        'p/\u00e9t\u00e9',
        'p/\u4e2d', // E4 B8 AD
        'p/\ufffd', // EF BF BD
        'p/\u{1f600}', // F0 9F 98 80
      ];
      const others = ['p', 'o/x', 'p0', 'q/', 'P/a'];
      const shuffled = [...expected, ...others].sort(() => 0.5 - Math.random());
      await b.write(new Map(shuffled.map((k, i) => [k, bytes(i)])));
      assert.deepEqual(await b.keys('p/'), expected);
      assert.deepEqual(await b.keys('p/a'), ['p/a', 'p/a/b']);
      assert.deepEqual(await b.keys('p/\u00e9'), ['p/\u00e9', 'p/\u00e9t\u00e9']);
      assert.deepEqual(await b.keys('nothing/'), []);
      const all = await b.keys('');
      assert.equal(all.length, expected.length + others.length);
      assert.deepEqual(
        all.filter((k) => k.startsWith('p/')),
        expected,
      );
      assert.deepEqual(all.slice(0, 3), ['P/a', 'o/x', 'p']);
    });

    it('applies overlapping writes in call order', async () => {
      const [b] = await fresh();
      const calls: Promise<void>[] = [];
      for (let i = 0; i < 60; i++) {
        calls.push(
          b.write(
            new Map<string, Uint8Array | null>([
              ['last', text(String(i))],
              [`n/${String(i).padStart(2, '0')}`, text(String(i))],
              // Each call deletes what the one before it wrote under `n/`, but the last stays.
              ...(i > 0 ? [[`n/${String(i - 1).padStart(2, '0')}`, null] as const] : []),
            ]),
          ),
        );
        if (i % 3 === 0) calls.push(b.write(new Map([['flip', null]])));
        else calls.push(b.write(new Map([['flip', text(String(i))]])));
      }
      await Promise.all(calls);
      assert.equal(await readText(b, 'last'), '59');
      assert.deepEqual(await b.keys('n/'), ['n/59']);
      assert.equal(await readText(b, 'flip'), '59');
    });

    it('keeps stores apart', async () => {
      const [one] = await fresh();
      const [two] = await fresh();
      await one.write(new Map([['k', text('one')]]));
      await two.write(new Map([['k', text('two')]]));
      assert.equal(await readText(one, 'k'), 'one');
      assert.equal(await readText(two, 'k'), 'two');
      await two.write(new Map([['k', null]]));
      assert.equal(await readText(one, 'k'), 'one');
      assert.deepEqual(await two.keys(''), []);
    });

    if (target.persistent)
      it('sees its data again after close and reopen; close is idempotent', async () => {
        const [b, ns] = await fresh();
        await b.write(
          new Map([
            ['cp/1/meta', text('m')],
            ['cp/1/state/x', bytes(0, 255, 0)],
          ]),
        );
        await b.close();
        await b.close();
        const again = await target.open(ns);
        open.push(again);
        assert.deepEqual(await again.keys('cp/'), ['cp/1/meta', 'cp/1/state/x']);
        assert.deepEqual([...((await again.read('cp/1/state/x')) ?? [])], [0, 255, 0]);
      });

    const failing = target.failingWrite;
    if (failing !== undefined)
      it('a batch that fails part-way changes nothing, and the store keeps working', async () => {
        const [b, ns] = await fresh();
        await b.write(
          new Map([
            ['a', text('1')],
            ['b', text('2')],
          ]),
        );
        const f = await failing(ns);
        open.push(f.backend);
        await assert.rejects(f.backend.write(f.batch), f.error);
        await f.heal?.();
        assert.equal(await readText(f.backend, 'a'), '1');
        assert.equal(await readText(f.backend, 'b'), '2');
        assert.deepEqual(await f.backend.keys(''), ['a', 'b']);
        await f.backend.write(new Map([['a', text('after')]]));
        assert.equal(await readText(f.backend, 'a'), 'after');
      });
  });
}

/** A batch that touches the keys the failure test starts with (`a`, `b`) and adds others. */
export function failureBatch(
  extra: ReadonlyMap<string, Uint8Array> = new Map(),
): Map<string, Uint8Array | null> {
  return new Map<string, Uint8Array | null>([
    ['a', text('changed')],
    ['b', null],
    ['c', text('new')],
    ...extra,
  ]);
}
