/**
 * For in-process CLI tests: a fake stdout/stderr that keeps what is written, and a temporary
 * folder for pipeline files, removed after the file's tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

/** A `TextOut` that keeps the text written to it; a terminal 200 columns wide when `isTTY`. */
export class Capture {
  text = '';
  readonly isTTY: boolean;
  readonly columns = 200;
  constructor(isTTY = false) {
    this.isTTY = isTTY;
  }
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

/**
 * Registers `before`/`after` hooks for a temporary folder (prefix `prefix`) and returns a
 * function that writes a file into it and returns its path.
 *
 * @example
 * const file = tempFiles('sluice-cli-');
 * const path = file('good.yaml', 'input: …');
 */
export function tempFiles(prefix: string): (name: string, text: string) => string {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  return (name, text) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
}
