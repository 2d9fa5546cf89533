/**
 * The dead letters of one stage between two of its calls: `StageContext.deadLetter` adds one
 * (or fails the run when no `dlq` output exists), and the runtime sends what was collected to
 * the dlq after each call, before the stage's next message (so a barrier covers them).
 */
import type { Clock } from './clock.ts';
import { ErrorCode, errorMessage, SluiceError } from './errors.ts';
import type { Batch, RecordMeta } from './message.ts';
import { redactSecretsDeep } from './secrets.ts';
import type { DeadLetter } from './stage.ts';

/** Collects one stage's dead letters; see the module comment. */
export class StageDeadLetters {
  private readonly stage: string;
  private readonly hasDlq: boolean;
  private readonly clock: Clock;
  private readonly counted: (message: string, code: string) => void;
  private letters: DeadLetter[] = [];
  /** The original meta of each letter (key, headers…), sent with it to the dlq. */
  private meta: RecordMeta[] = [];

  /**
   * @param stage the stage's name, in letters and errors
   * @param hasDlq false when the run has no `dlq` output: `add` then throws `SLUICE_NO_DLQ`
   * @param clock stamps each letter's `time`
   * @param counted called after each letter with its message and error code (metrics, error-rate check; may throw)
   */
  constructor(
    stage: string,
    hasDlq: boolean,
    clock: Clock,
    counted: (message: string, code: string) => void,
  ) {
    this.stage = stage;
    this.hasDlq = hasDlq;
    this.clock = clock;
    this.counted = counted;
  }

  /** True when letters wait to be sent. */
  get pending(): boolean {
    return this.letters.length > 0;
  }

  /** Wraps `record` with its error and origin; throws `SLUICE_NO_DLQ` without a `dlq` output. */
  add(record: unknown, error: unknown, meta: RecordMeta | undefined): void {
    // The error and the position are text about the record, which may quote a secret (a URL or
    // a path from `${VAR}`); the record itself is the user's data and is kept as it is.
    const errJson = redactSecretsDeep(
      error instanceof SluiceError
        ? (error.toJSON() as DeadLetter['error'])
        : { code: ErrorCode.RECORD, message: errorMessage(error) },
    );
    if (!this.hasDlq) {
      const where = meta?.position ? ` at ${JSON.stringify(meta.position)}` : '';
      throw new SluiceError(
        ErrorCode.NO_DLQ,
        `stage \`${this.stage}\` rejected a record${where}: ${errJson.message}. Configure a \`dlq\` output to keep rejected records and let the run go on`,
        { stage: this.stage, ...(meta?.position ?? {}) },
        { cause: error },
      );
    }
    this.letters.push({
      error: errJson,
      stage: this.stage,
      ...(meta?.source !== undefined ? { source: meta.source } : {}),
      ...(meta?.position !== undefined ? { position: redactSecretsDeep(meta.position) } : {}),
      record,
      time: new Date(this.clock.now()).toISOString(),
    });
    this.meta.push(meta ?? { source: this.stage });
    this.counted(errJson.message, errJson.code);
  }

  /** The collected letters as one batch for the dlq (and forgets them), or undefined when none. */
  take(): Batch<DeadLetter> | undefined {
    if (this.letters.length === 0) return undefined;
    const batch: Batch<DeadLetter> = { kind: 'batch', records: this.letters, meta: this.meta };
    this.letters = [];
    this.meta = [];
    return batch;
  }
}
