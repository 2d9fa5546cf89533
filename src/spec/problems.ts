/**
 * Config problems: what `sluice lint` prints and what a config {@link SluiceError} carries.
 * Validation collects every problem of a document at once (never stops at the first).
 */
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { redactSecrets } from '../core/secrets.ts';

/** One problem in a pipeline file, located by line, column and config path. */
export interface ConfigProblem {
  /** `error` makes the file invalid; `warning` is printed but the file still runs. */
  readonly severity: 'error' | 'warning';
  /** The pipeline file, as given by the user. */
  readonly file: string;
  /** 1-based line, when known. */
  readonly line?: number | undefined;
  /** 1-based column, when known. */
  readonly column?: number | undefined;
  /** Path inside the document, e.g. `pipeline[2].batch.size`; empty for the whole document. */
  readonly path: string;
  /** What is wrong and what to do instead. */
  readonly message: string;
}

/** `a.b[2].c` from path segments. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

/**
 * One line per problem: `file:line:column: error: path: message`.
 *
 * @example
 * formatProblem({ severity: 'error', file: 'p.yaml', line: 3, column: 5, path: 'input', message: 'x' });
 * // 'p.yaml:3:5: error: input: x'
 */
export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`;
  return `${where}: ${p.severity}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`;
}

/** Sorts problems by line then column (problems without a line first). */
export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/**
 * `problems` with every secret value (see `core/secrets.ts`: the values of `${VAR}`) replaced
 * in their messages.
 */
export function redactProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems.map((p) => {
    const message = redactSecrets(p.message);
    return message === p.message ? p : { ...p, message };
  });
}

/**
 * The `SLUICE_CONFIG` error for a file with problems. Its message lists every error, one per
 * line; `context.problems` holds them all (warnings too) as data. Secret values are redacted
 * from both (a component's `create` may quote its config in what it throws).
 */
export function configError(file: string, all: readonly ConfigProblem[]): SluiceError {
  const problems = redactProblems(all);
  const errors = sortProblems(problems.filter((p) => p.severity === 'error'));
  const n = errors.length;
  const message = `${file} has ${n} problem${n === 1 ? '' : 's'}:\n${errors.map((p) => `  ${formatProblem(p)}`).join('\n')}`;
  return new SluiceError(ErrorCode.CONFIG, message, { file, problems: sortProblems(problems) });
}

/** The problems a config error carries (empty for any other error). */
export function problemsOf(err: unknown): ConfigProblem[] {
  if (err instanceof SluiceError && err.code === ErrorCode.CONFIG && Array.isArray(err.context.problems)) {
    return err.context.problems as ConfigProblem[];
  }
  return [];
}
