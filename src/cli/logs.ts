/**
 * What `sluice run` says on stderr, as text (the default) or, with `--log-format json`, as one
 * JSON object per line: `{"time","level","pipeline","stage","message","code","context"}` — for
 * log shippers. Both go through the CLI's redacting stderr (`output.ts`), and JSON values are
 * redacted before they are serialised too, so a secret never reaches a log in either format.
 */
import type { Env } from '../config/yaml.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { redactSecretsDeep } from '../core/secrets.ts';
import type { Logger } from '../core/stage.ts';
import { problemsOf } from '../spec/problems.ts';
import { printError, type TextOut } from './output.ts';

/** The formats of `--log-format`. */
export const LOG_FORMATS = ['text', 'json'] as const;

/** A log format. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** A log level. */
export type LogLevel = 'info' | 'warn' | 'error';

/** `--log-format`'s value checked; throws a `SLUICE_CONFIG` error naming the choices. */
export function parseLogFormat(value: string | undefined): LogFormat {
  if (value === undefined) return 'text';
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new SluiceError(ErrorCode.CONFIG, `unknown log format \`${value}\`: use \`text\` or \`json\``, {
    option: '--log-format',
  });
}

/** One entry of a JSON log. */
export interface LogEntry {
  readonly level: LogLevel;
  readonly message: string;
  readonly stage?: string | undefined;
  readonly code?: string | undefined;
  readonly context?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * One JSON log line (with its newline); secrets redacted, `undefined` fields left out, values
 * JSON cannot hold (bigint) written as strings.
 *
 * @example
 * formatJsonLine('etl', { level: 'warn', message: 'Retrying', stage: 'db' }, 0);
 * // '{"time":"1970-01-01T00:00:00.000Z","level":"warn","pipeline":"etl","stage":"db","message":"Retrying"}\n'
 */
export function formatJsonLine(pipeline: string, entry: LogEntry, now: number = Date.now()): string {
  const line = redactSecretsDeep({
    time: new Date(now).toISOString(),
    level: entry.level,
    pipeline,
    stage: entry.stage,
    message: entry.message,
    code: entry.code,
    context: entry.context !== undefined && Object.keys(entry.context).length > 0 ? entry.context : undefined,
  });
  return `${JSON.stringify(line, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`;
}

/** The run's log in one format; see the module comment. */
export class RunLog {
  readonly format: LogFormat;
  private readonly out: TextOut;
  private readonly pipeline: string;
  /** Text on a terminal: clears the live status line before a line is written. */
  private readonly clear: string;

  constructor(out: TextOut, format: LogFormat, pipeline: string) {
    this.out = out;
    this.format = format;
    this.pipeline = pipeline;
    this.clear = format === 'text' && out.isTTY === true ? '\r\x1b[K' : '';
  }

  /** A message of the CLI itself (progress, summary, drain): text as it is, or a JSON line. */
  say(level: LogLevel, message: string, context?: Readonly<Record<string, unknown>>): void {
    if (this.format === 'json') this.out.write(formatJsonLine(this.pipeline, { level, message, context }));
    else this.out.write(`${message}\n`);
  }

  /** A run's error (what made it fail): `printError`'s text, or one JSON line with its code and context. */
  error(err: unknown, env: Env): void {
    if (this.format === 'text' || problemsOf(err).length > 0) {
      printError(this.out, err, env);
      return;
    }
    const e = err instanceof SluiceError ? err : undefined;
    const { stage, ...context } = (e?.context ?? {}) as Record<string, unknown>;
    this.out.write(
      formatJsonLine(this.pipeline, {
        level: 'error',
        message: err instanceof Error ? err.message : String(err),
        stage: typeof stage === 'string' ? stage : undefined,
        code: e?.code ?? ErrorCode.STAGE,
        context,
      }),
    );
  }

  /** The logger handed to the run's stages (warnings and errors; `info` is dropped as before). */
  logger(): Logger {
    const line = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
      if (this.format === 'text') {
        this.out.write(
          `${this.clear}${level.toUpperCase()} ${msg}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`,
        );
        return;
      }
      const { stage, code, ...context } = fields ?? {};
      this.out.write(
        formatJsonLine(this.pipeline, {
          level,
          message: msg,
          stage: typeof stage === 'string' ? stage : undefined,
          code: typeof code === 'string' ? code : undefined,
          context,
        }),
      );
    };
    return {
      info: () => {},
      warn: (msg, fields) => line('warn', msg, fields),
      error: (msg, fields) => line('error', msg, fields),
    };
  }
}
