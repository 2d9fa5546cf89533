/**
 * Stable error codes and the one error class of Sluice.
 *
 * Every error a user can see carries a `code` from {@link ErrorCode}, a message that says
 * what went wrong and what to do, and structured context (stage, file, line, offset…).
 */

/** Stable, documented error codes. Never rename one; add new ones at the end. */
export const ErrorCode = {
  /** The pipeline configuration is invalid (YAML or TypeScript). */
  CONFIG: 'SLUICE_CONFIG',
  /** A record could not be parsed (bad JSON line, bad CSV row…). */
  PARSE: 'SLUICE_PARSE',
  /** A user function or expression threw for one record. */
  RECORD: 'SLUICE_RECORD',
  /** A stage failed as a whole (I/O error, connector failure). */
  STAGE: 'SLUICE_STAGE',
  /** The run was cancelled (stop without drain, second signal, abort). */
  CANCELLED: 'SLUICE_CANCELLED',
  /** A send or receive on a closed channel. */
  CHANNEL_CLOSED: 'SLUICE_CHANNEL_CLOSED',
  /** A bounded buffer with overflow policy `error` was full. */
  OVERFLOW: 'SLUICE_OVERFLOW',
  /** Too many records failed: the configured maximum error rate was exceeded. */
  ERROR_RATE: 'SLUICE_ERROR_RATE',
  /** A record failed and no `dlq` output is configured to take it. */
  NO_DLQ: 'SLUICE_NO_DLQ',
  /** Keyed state passed its limit (`maxKeys`, `maxStateBytes`): the run stopped before running out of memory. */
  STATE_LIMIT: 'SLUICE_STATE_LIMIT',
  /** A disk (or quota) is full: a write could not complete; nothing after the last complete checkpoint is lost. */
  DISK_FULL: 'SLUICE_DISK_FULL',
} as const;

/** One of the values of {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Where an error happened; every field is optional, fill in what is known. */
export interface ErrorContext {
  /** Stage (node) name in the pipeline, e.g. `map#2` or `file-sink`. */
  stage?: string;
  /** Component kind, e.g. `file`, `kafka`, `filter`. */
  component?: string;
  /** File path (config file or data file). */
  file?: string;
  /** 1-based line number in `file`. */
  line?: number;
  /** 1-based column number in `file`. */
  column?: number;
  /** Byte offset in `file` (0-based). */
  offset?: number;
  /** Path inside a config document, e.g. `pipeline[2].batch.size`. */
  path?: string;
  /** Any other identifying detail (partition, field, value…). */
  [key: string]: unknown;
}

/**
 * The error class of Sluice: a stable `code`, a message that says what to do, the
 * `cause` it wraps and structured `context`.
 *
 * @example
 * throw new SluiceError(ErrorCode.PARSE, 'invalid JSON: Unexpected token', { file: 'in.jsonl', line: 3 });
 */
export class SluiceError extends Error {
  override readonly name = 'SluiceError';
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  /**
   * True when trying the same thing again may succeed (connection lost, server starting,
   * timeout); read by `retrying` (`core/retry.ts`). False or absent: a retry cannot help.
   */
  readonly retryable: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    context: ErrorContext = {},
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message, options);
    this.code = code;
    this.context = context;
    this.retryable = options?.retryable ?? false;
  }

  /** A plain JSON-safe view: code, message, context and the cause's message. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { code: this.code, message: this.message, ...this.context };
    if (this.cause !== undefined) out.cause = errorMessage(this.cause);
    return out;
  }
}

/** The message of anything thrown (`Error.message`, or `String(x)`). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Wraps `err` with what was being done (the gerund rule: `writing out.jsonl: ENOSPC`),
 * keeping an existing code and context.
 */
export function wrapError(
  doing: string,
  err: unknown,
  context: ErrorContext = {},
  code: ErrorCode = ErrorCode.STAGE,
): SluiceError {
  if (err instanceof SluiceError) {
    return new SluiceError(
      err.code,
      `${doing}: ${err.message}`,
      { ...err.context, ...context },
      { cause: err },
    );
  }
  return new SluiceError(code, `${doing}: ${errorMessage(err)}`, context, { cause: err });
}

/** The error used when a run is cancelled; `isCancellation` recognises it. */
export function cancelledError(reason?: unknown): SluiceError {
  if (reason instanceof SluiceError) return reason;
  return new SluiceError(
    ErrorCode.CANCELLED,
    reason === undefined ? 'the run was cancelled' : `the run was cancelled: ${errorMessage(reason)}`,
  );
}

/** True when `err` only says that the run was cancelled (not a failure of its own). */
export function isCancellation(err: unknown): boolean {
  return (
    (err instanceof SluiceError && err.code === ErrorCode.CANCELLED) ||
    (err instanceof Error && err.name === 'AbortError')
  );
}
