/**
 * The services scripts run Maven without letting its colour codes into the terminal or `npm
 * test`'s output (issue #15): Maven 3.8 writes `ESC[0m` even in batch mode to a pipe. A failing
 * Maven run (offline, a dependency that does not exist) reports what Maven said, without them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { mvn } from '../scripts/services/service.ts';

const haveMaven = spawnSync('sh', ['-c', 'command -v mvn'], { stdio: 'ignore' }).status === 0;

test('mvn: a failure says what Maven said, without colour codes', {
  skip: !haveMaven && 'no mvn on PATH',
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-mvn-'));
  try {
    writeFileSync(
      join(dir, 'pom.xml'),
      '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion><groupId>t</groupId><artifactId>t</artifactId><version>1</version><dependencies><dependency><groupId>no.such</groupId><artifactId>thing</artifactId><version>1</version></dependency></dependencies></project>',
    );
    assert.throws(
      () =>
        mvn([
          '-o',
          '-f',
          join(dir, 'pom.xml'),
          'dependency:copy-dependencies',
          `-DoutputDirectory=${dir}/lib`,
        ]),
      (err: Error) => {
        assert.match(err.message, /exited with 1:\n[\s\S]*\[ERROR\]/);
        assert.ok(
          !err.message.includes(String.fromCharCode(27)),
          `colour codes in: ${JSON.stringify(err.message)}`,
        );
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
