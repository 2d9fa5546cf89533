/**
 * The `file` lookup store: a CSV (with a header) or JSONL file read whole into memory when the
 * step opens, indexed by one field. For reference tables small enough to hold (country codes,
 * product lists); each lookup is then a map read, and the cache is not needed.
 */
import { readFile } from 'node:fs/promises';
import { ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import { formatDecoder } from '../../formats/formats.ts';
import type { LookupProvider } from './provider.ts';

/** Options of {@link fileLookup}. */
export interface FileLookupOptions {
  /** The file, absolute or relative to the working directory. */
  readonly path: string;
  readonly format: 'csv' | 'jsonl';
  /** The field of each row that holds its key (compared as text). A later row of a key replaces an earlier one. */
  readonly keyField: string;
}

/**
 * A provider answering from a file loaded at `open`. A row without `keyField` or one that cannot
 * be decoded fails the open with its line, so a broken table never half-loads.
 *
 * @example
 * const countries = fileLookup({ path: 'countries.csv', format: 'csv', keyField: 'code' });
 */
export function fileLookup(options: FileLookupOptions): LookupProvider & { readonly rows: () => number } {
  const table = new Map<string, unknown>();
  const where = `file \`${options.path}\``;
  return {
    describe: where,
    rows: () => table.size,
    async open() {
      let bytes: Buffer;
      try {
        bytes = await readFile(options.path);
      } catch (err) {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `reading the lookup table ${where}: ${errorMessage(err)}; check \`path\` (relative paths start at the pipeline file's folder)`,
          { file: options.path },
          { cause: err },
        );
      }
      const decoder = formatDecoder(options.format);
      const sink = {
        record: (value: unknown, line: number) => {
          const key = (value as Record<string, unknown> | null)?.[options.keyField];
          if (key === undefined || key === null || key === '')
            throw new SluiceError(
              ErrorCode.CONFIG,
              `the lookup table ${where} has a row without \`${options.keyField}\` at line ${line}; every row needs the \`keyField\``,
              { file: options.path, line },
            );
          table.set(String(key), value);
        },
        invalid: (error: SluiceError) => {
          throw new SluiceError(ErrorCode.CONFIG, `reading the lookup table ${where}: ${error.message}`, {
            ...error.context,
            file: options.path,
          });
        },
      };
      decoder.write(bytes, sink);
      decoder.end(sink);
    },
    async fetch(keys) {
      const found = new Map<string, unknown>();
      for (const k of keys) {
        const row = table.get(k);
        if (row !== undefined) found.set(k, row);
      }
      return found;
    },
  };
}
