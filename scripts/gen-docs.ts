/**
 * Writes the component reference `docs/components.md` from the default registry's specs.
 * `node scripts/gen-docs.ts --check` writes nothing and exits 1 when the checked-in file
 * differs from what the specs generate (for CI; `test/cli-docs.test.ts` does the same).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultRegistry } from '../src/components.ts';
import { componentsMarkdown } from '../src/config/docs.ts';

const target = fileURLToPath(new URL('../docs/components.md', import.meta.url));
const generated = componentsMarkdown(defaultRegistry);

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  if (current !== generated) {
    process.stderr.write(
      'docs/components.md is out of date; regenerate it with `node scripts/gen-docs.ts`\n',
    );
    process.exitCode = 1;
  }
} else {
  writeFileSync(target, generated);
  process.stdout.write(`Wrote ${target}\n`);
}
