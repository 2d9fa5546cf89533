/**
 * `sluice list`: the components of a registry for the terminal. A module of its own so that
 * `sluice run` does not load the field docs it prints.
 */
import { fieldDocs, MODULE_STEP_DOC } from '../config/docs.ts';
import type { ComponentKind, ComponentSpec, Registry } from '../spec/registry.ts';
import { didYouMean } from '../spec/suggest.ts';
import { ExitCode, type TextOut } from './output.ts';

const KINDS: Record<string, ComponentKind> = {
  source: 'source',
  sources: 'source',
  input: 'source',
  inputs: 'source',
  operator: 'operator',
  operators: 'operator',
  step: 'operator',
  steps: 'operator',
  sink: 'sink',
  sinks: 'sink',
  output: 'sink',
  outputs: 'sink',
};
const TITLES: Record<ComponentKind, string> = {
  source: 'Sources (input:)',
  operator: 'Operators (pipeline:)',
  sink: 'Sinks (output:, outputs:, dlq:)',
};

/**
 * `sluice list [what]`: every component by kind, one kind, or one component in full (its fields
 * and examples); returns the exit code. An unknown `what` gets a "did you mean" on `stderr`.
 */
export function listCommand(
  registry: Registry,
  what: string | undefined,
  stdout: TextOut,
  stderr: TextOut,
): number {
  const kind = what === undefined ? undefined : KINDS[what.toLowerCase()];
  if (what === undefined || kind !== undefined) {
    const kinds: ComponentKind[] = kind ? [kind] : ['source', 'operator', 'sink'];
    const width = Math.max(8, ...registry.list().map((s) => s.name.length));
    for (const k of kinds) {
      stdout.write(`${TITLES[k]}\n`);
      const specs = registry.list(k);
      if (specs.length === 0) stdout.write('  (none registered)\n');
      for (const s of specs)
        stdout.write(`  ${s.name.padEnd(width)}  ${s.stability.padEnd(12)}  ${s.summary}\n`);
      if (k === 'operator')
        stdout.write(
          `  ${'module'.padEnd(width)}  ${'stable'.padEnd(12)}  Your own code: \`module: ./file.ts\`.\n`,
        );
      stdout.write('\n');
    }
    stdout.write('Run `sluice list NAME` for the fields and examples of one component.\n');
    return ExitCode.OK;
  }
  if (what === 'module') {
    // Listed with the operators, but not a registered component: its config is the module's path.
    stdout.write(`module (step, stable)\n${MODULE_STEP_DOC.replace(/^(?=.)/gm, '  ')}`);
    return ExitCode.OK;
  }
  const order: ComponentKind[] = ['source', 'operator', 'sink'];
  const specs = registry
    .list()
    .filter((s) => s.name === what)
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  if (specs.length === 0) {
    const guess = didYouMean(what, [
      ...new Set([...registry.list().map((s) => s.name), ...Object.keys(KINDS), 'module']),
    ]);
    stderr.write(
      `Unknown component or kind \`${what}\`${guess ? `; did you mean \`${guess}\`?` : '.'} Run \`sluice list\` to see them all.\n`,
    );
    return ExitCode.CONFIG;
  }
  stdout.write(specs.map(describeComponent).join('\n'));
  return ExitCode.OK;
}

/** A component in full for the terminal: summary, fields, examples. */
function describeComponent(spec: ComponentSpec): string {
  const lines = [`${spec.name} (${spec.kind}, ${spec.stability})`, `  ${spec.summary}`];
  if (spec.description)
    lines.push(
      '',
      ...spec.description
        .trim()
        .split('\n')
        .map((l) => `  ${l}`),
    );
  const fields = fieldDocs(spec);
  lines.push('', fields.length > 0 ? 'Fields:' : 'Fields: none');
  for (const f of fields) {
    const meta = [
      f.type,
      f.required ? 'required' : f.default !== undefined ? `default ${f.default}` : 'optional',
    ].join(', ');
    lines.push(`  ${f.name} (${meta})${f.description ? `\n      ${f.description}` : ''}`);
  }
  for (const ex of spec.examples ?? []) {
    lines.push(
      '',
      `Example: ${ex.title}`,
      `  ${spec.name}:`,
      ...ex.yaml
        .trimEnd()
        .split('\n')
        .map((l) => `    ${l}`),
    );
  }
  return `${lines.join('\n')}\n`;
}
