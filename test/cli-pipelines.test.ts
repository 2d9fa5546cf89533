/**
 * Golden pipelines: each folder of test/pipelines/ is copied to a temporary folder and run
 * through the real CLI as a child process (`node bin/sluice.js …`).
 *
 * A case folder holds `pipeline.yaml` and its inputs; `expected/` holds files the run must
 * produce (same relative paths). `.jsonl` files are compared value by value, where the string
 * `"<any>"` in an expected value matches anything (timestamps, absolute paths); other files
 * byte for byte. An optional `case.json` sets `args` (default `["run", "pipeline.yaml"]`),
 * `env`, `exitCode` (default 0), substrings `stdout`/`stderr` must contain, `stderrExcludes`,
 * and `absent` files that must not exist afterwards.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const casesDir = join(root, 'test', 'pipelines');
const bin = join(root, 'bin', 'sluice.js');

interface CaseSpec {
  args?: string[];
  env?: Record<string, string>;
  exitCode?: number;
  stdout?: string[];
  stderr?: string[];
  stderrExcludes?: string[];
  absent?: string[];
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

/** True when `actual` matches `expected`, where `"<any>"` matches any value. */
function matches(expected: unknown, actual: unknown): boolean {
  if (expected === '<any>') return actual !== undefined;
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((e, i) => matches(e, actual[i]))
    );
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    const ek = Object.keys(expected).sort();
    const ak = Object.keys(actual).sort();
    return (
      ek.length === ak.length &&
      ek.every(
        (k, i) =>
          k === ak[i] &&
          matches((expected as Record<string, unknown>)[k], (actual as Record<string, unknown>)[k]),
      )
    );
  }
  return Object.is(expected, actual);
}

function compareFile(name: string, expectedText: string, actualText: string): void {
  if (!name.endsWith('.jsonl')) {
    assert.equal(actualText, expectedText, `${name} differs`);
    return;
  }
  const parse = (t: string) =>
    t
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as unknown);
  const exp = parse(expectedText);
  const act = parse(actualText);
  assert.equal(
    act.length,
    exp.length,
    `${name}: ${act.length} lines, expected ${exp.length}:\n${actualText}`,
  );
  exp.forEach((e, i) => {
    assert.ok(
      matches(e, act[i]),
      `${name} line ${i + 1}:\n  got      ${JSON.stringify(act[i])}\n  expected ${JSON.stringify(e)}`,
    );
  });
}

describe('golden pipelines through the CLI', () => {
  for (const name of readdirSync(casesDir).sort()) {
    const caseDir = join(casesDir, name);
    if (!existsSync(join(caseDir, 'pipeline.yaml'))) continue;
    it(name, () => {
      const spec: CaseSpec = existsSync(join(caseDir, 'case.json'))
        ? (JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8')) as CaseSpec)
        : {};
      const work = mkdtempSync(join(tmpdir(), `sluice-golden-${name}-`));
      try {
        cpSync(caseDir, work, {
          recursive: true,
          filter: (src) => !relative(caseDir, src).startsWith('expected'),
        });
        const env: Record<string, string | undefined> = { ...process.env, ...spec.env };
        delete env.SLUICE_DEBUG;
        const r = spawnSync(process.execPath, [bin, ...(spec.args ?? ['run', 'pipeline.yaml'])], {
          cwd: work,
          env,
          encoding: 'utf8',
          timeout: 60_000,
        });
        const shown = `exit ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
        assert.equal(r.status, spec.exitCode ?? 0, shown);
        for (const s of spec.stdout ?? [])
          assert.ok(r.stdout.includes(s), `stdout lacks ${JSON.stringify(s)}\n${shown}`);
        for (const s of spec.stderr ?? [])
          assert.ok(r.stderr.includes(s), `stderr lacks ${JSON.stringify(s)}\n${shown}`);
        for (const s of spec.stderrExcludes ?? [])
          assert.ok(!r.stderr.includes(s), `stderr has ${JSON.stringify(s)}\n${shown}`);
        for (const f of spec.absent ?? [])
          assert.ok(!existsSync(join(work, f)), `${f} should not exist\n${shown}`);
        const expectedDir = join(caseDir, 'expected');
        if (existsSync(expectedDir)) {
          for (const f of filesUnder(expectedDir)) {
            const produced = join(work, f);
            assert.ok(existsSync(produced), `the run did not produce ${f}\n${shown}`);
            compareFile(f, readFileSync(join(expectedDir, f), 'utf8'), readFileSync(produced, 'utf8'));
          }
        }
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }
});
