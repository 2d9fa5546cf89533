/**
 * Which modules importing a module loads, seen from a fresh Node process: a resolve hook
 * (`module.registerHooks`, which sees both `import` and `require`) records every URL resolved
 * while the module and everything it imports at load time are evaluated.
 */
import { spawnSync } from 'node:child_process';

/** The client libraries only the subpath entries may load. */
export const CLIENT_LIBRARIES = ['pg', 'pg-copy-streams', 'ioredis', '@platformatic/kafka'] as const;

const CHILD = `
import { registerHooks } from 'node:module';
const seen = [];
registerHooks({
  resolve(specifier, context, next) {
    const resolved = next(specifier, context);
    seen.push(resolved.url);
    return resolved;
  },
});
for (const specifier of process.argv.slice(1)) await import(specifier);
process.stdout.write(JSON.stringify(seen));
`;

/**
 * The URLs of every module that importing `specifiers` (in order, from `cwd`) resolves. Throws
 * with the child's stderr when the import fails.
 */
export function modulesLoadedBy(
  specifiers: readonly string[],
  cwd: string,
  node = process.execPath,
): string[] {
  const child = spawnSync(node, ['--input-type=module', '--eval', CHILD, ...specifiers], {
    cwd,
    encoding: 'utf8',
  });
  if (child.status !== 0) {
    throw new Error(`importing ${specifiers.join(', ')} failed (exit ${child.status}):\n${child.stderr}`);
  }
  return JSON.parse(child.stdout) as string[];
}

/** Which of {@link CLIENT_LIBRARIES} the URLs belong to. */
export function clientLibrariesIn(urls: readonly string[]): string[] {
  return CLIENT_LIBRARIES.filter((lib) => urls.some((url) => url.includes(`/node_modules/${lib}/`)));
}
