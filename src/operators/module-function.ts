/**
 * Loading the user function a step names by module path and export (`serial`'s `step`,
 * `mapAsync`'s `module`): in the stage's `open`, since building must do no I/O (`sluice lint`
 * builds the pipeline too).
 */
import { pathToFileURL } from 'node:url';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';

/**
 * The export `exportName` of the module at the absolute path `path`, which must be a function.
 * Throws a `SLUICE_CONFIG` error naming the module when it cannot be loaded, and saying what to
 * export (`shape`, e.g. `(record, state) => …`) when the export is missing or not a function.
 *
 * @example
 * const fn = await importFunction('/app/enrich.ts', 'default', 'async (record, signal) => record');
 */
export async function importFunction<F>(path: string, exportName: string, shape: string): Promise<F> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `loading module \`${path}\`: ${errorMessage(err)}`,
      {},
      { cause: err },
    );
  }
  const fn = mod[exportName];
  if (typeof fn === 'function') return fn as F;
  throw new SluiceError(
    ErrorCode.CONFIG,
    `module \`${path}\`: export \`${exportName}\` is ${fn === undefined ? 'missing' : typeof fn}; export a function \`${shape}\``,
  );
}
