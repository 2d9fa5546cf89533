/**
 * What the CLI writes to and listens on, injectable so commands are tested in-process, and how
 * it reports errors: user errors (a {@link SluiceError}) as message, code and context without
 * a stack; internal bugs with their stack.
 */

import type { Env } from '../config/yaml.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { redactSecrets } from '../core/secrets.ts';
import { type ConfigProblem, formatProblem, problemsOf, sortProblems } from '../spec/problems.ts';
import type { Registry } from '../spec/registry.ts';

/** A stream the CLI writes text to (`process.stdout`, `process.stderr`, or a test double). */
export interface TextOut {
  write(text: string): unknown;
  /** True on a terminal: `run` then draws a live status line. */
  readonly isTTY?: boolean | undefined;
  /** Terminal width, when known. */
  readonly columns?: number | undefined;
}

/**
 * `out` with every secret value (see `core/secrets.ts`: the values of `${VAR}` in pipeline
 * files) replaced in what is written to it: everything the CLI says goes through one of these.
 */
export function redacting(out: TextOut): TextOut {
  return {
    write: (text: string) => out.write(redactSecrets(text)),
    get isTTY() {
      return out.isTTY;
    },
    get columns() {
      return out.columns;
    },
  };
}

/** Where the CLI gets SIGINT/SIGTERM from (`process`, or an EventEmitter in tests). */
export interface SignalSource {
  on(signal: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  off(signal: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
}

/** Everything a CLI command touches outside itself. */
export interface CliIO {
  readonly stdout: TextOut;
  readonly stderr: TextOut;
  /** Variables for `${VAR}` in pipeline files. */
  readonly env: Env;
  /** The components pipeline files may use. */
  readonly registry: Registry;
  /**
   * When `registry` holds only the components a pipeline file names: loads every built-in one,
   * to re-check a file with problems, so that "did you mean" hints see every name.
   */
  readonly fullRegistry?: (() => Promise<Registry>) | undefined;
  readonly signals: SignalSource;
  /** Milliseconds between live status redraws on a TTY (default 250) and log lines off one (default 10 s). */
  readonly statusIntervalMs?: { readonly tty: number; readonly log: number } | undefined;
}

/** Exit codes of the `sluice` command. */
export const ExitCode = {
  OK: 0,
  /** The run failed, or `lint` found problems. */
  FAILED: 1,
  /** The configuration (or the command line) is invalid. */
  CONFIG: 2,
  /** Stopped at once by a second Ctrl-C (128 + SIGINT). */
  INTERRUPTED: 130,
  /** Stopped at once by a second signal that was a SIGTERM (128 + SIGTERM). */
  TERMINATED: 143,
} as const;

/** Writes config problems one per line, errors and warnings, sorted by position. */
export function printProblems(out: TextOut, problems: readonly ConfigProblem[]): void {
  for (const p of sortProblems(problems)) out.write(`${formatProblem(p)}\n`);
}

// Errors of these types come from code, not from input: show where they happened. (Not
// SyntaxError: `JSON.parse` throws it for bad input.)
const BUG_TYPES = [TypeError, ReferenceError, RangeError];

function rootCause(err: unknown): unknown {
  let e = err;
  for (let i = 0; i < 10 && e instanceof Error && e.cause !== undefined; i++) e = e.cause;
  return e;
}

/**
 * True when `err` looks like a bug rather than bad input or a failing service: not a
 * {@link SluiceError} at all, or a stage failure (`SLUICE_STAGE`) caused by a TypeError,
 * ReferenceError or RangeError.
 */
function isInternalError(err: unknown): boolean {
  if (!(err instanceof SluiceError)) return true;
  if (err.code !== ErrorCode.STAGE) return false;
  const root = rootCause(err);
  return root !== err && BUG_TYPES.some((t) => root instanceof t);
}

/**
 * Prints an error for a user: config problems one per line; a {@link SluiceError} as
 * `Error [CODE]: message` plus its context; anything else (and with `SLUICE_DEBUG=1`, always)
 * with its stack.
 */
export function printError(out: TextOut, err: unknown, env: Env): void {
  const problems = problemsOf(err);
  if (problems.length > 0) {
    printProblems(out, problems);
    const n = problems.filter((p) => p.severity === 'error').length;
    out.write(
      `${n} problem${n === 1 ? '' : 's'} in ${String((err as SluiceError).context.file)}; nothing was run.\n`,
    );
    return;
  }
  const debug = env.SLUICE_DEBUG === '1' || env.SLUICE_DEBUG === 'true';
  if (err instanceof SluiceError) {
    out.write(`Error [${err.code}]: ${err.message}\n`);
    const context = Object.entries(err.context).filter(([k, v]) => k !== 'problems' && v !== undefined);
    for (const [k, v] of context) out.write(`  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}\n`);
    if (isInternalError(err) || debug) {
      const root = rootCause(err);
      out.write(`This looks like a bug; the stack:\n${root instanceof Error ? root.stack : String(root)}\n`);
    }
    return;
  }
  out.write(`Internal error (a bug in Sluice or in a component; please report it with the stack below):\n`);
  out.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}

/** The exit code for an error: 2 for configuration errors, 1 otherwise. */
export function exitCodeOf(err: unknown): number {
  return err instanceof SluiceError && err.code === ErrorCode.CONFIG ? ExitCode.CONFIG : ExitCode.FAILED;
}
