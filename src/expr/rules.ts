/**
 * Rule sets: a versioned document of CEL rules (`filter`, `map`, `routes`) that can change
 * while a pipeline runs, and the {@link RuleSlot} that swaps a new set in atomically.
 *
 * A new document is parsed, validated and compiled off the hot path (when a reloader hands
 * it over); only a set that compiled completely becomes *pending*, and the operator takes the
 * pending set at the start of a batch, so every record of a batch is judged by one set. A set
 * that fails is rejected: the running set stays, the failure is logged and counted.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ErrorCode, errorMessage, SluiceError } from '../core/errors.ts';
import type { Logger } from '../core/stage.ts';

/** A route case: records for which `when` is true go to output port `to`. */
export interface RouteCase {
  readonly when: string;
  readonly to: string;
}

/** The fields of a `map` step: computed fields (name → expression) and fields to drop. */
export interface MapRules {
  readonly fields: Readonly<Record<string, string>>;
  readonly drop?: readonly string[] | undefined;
}

/** A rule-set document, as read from a YAML or JSON file or URL. See src/expr/README.md. */
export interface RuleSetDocument {
  /** Declared version; when present it must grow with every change. */
  readonly version?: number | undefined;
  /** Expression of a `filter` step. */
  readonly filter?: string | undefined;
  /** Fields of a `map` step. */
  readonly map?: MapRules | undefined;
  /** Cases of a `route` step, tried in order. */
  readonly routes?: readonly RouteCase[] | undefined;
  /** Port of a `route` step for records no case matches. */
  readonly default?: string | undefined;
}

/** A field name a `map` step may write: not empty and not `__proto__`. */
export const fieldName = z
  .string()
  .min(1)
  .refine((s) => s !== '__proto__', { message: '`__proto__` cannot be a field name' });

/** Schema of the `map` rules. */
export const mapRulesSchema = z
  .object({
    fields: z
      .record(fieldName, z.string().min(1))
      .describe('Computed fields: name → CEL expression over the input record.'),
    drop: z.array(z.string()).optional().describe('Fields to remove from the output record.'),
  })
  .strict();

/** Schema of one route case. */
export const routeCaseSchema = z
  .object({
    when: z.string().min(1).describe('CEL condition; the first true case wins.'),
    to: z.string().min(1).describe('Output port (a name under the pipeline `outputs:`).'),
  })
  .strict();

/** Schema of a rule-set document. */
export const ruleSetSchema = z
  .object({
    version: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('Version of this rule set; must grow with every change.'),
    filter: z.string().min(1).optional().describe('Expression of a `filter` step.'),
    map: mapRulesSchema.optional(),
    routes: z.array(routeCaseSchema).optional(),
    default: z.string().min(1).optional(),
  })
  .strict();

/**
 * Parses a rule-set document (YAML or JSON text) and validates its shape, reporting every
 * problem at once. Throws a `SLUICE_CONFIG` error naming `origin`.
 *
 * @example
 * parseRuleSet('version: 2\nfilter: risk > 50', 'rules.yaml').filter; // 'risk > 50'
 */
export function parseRuleSet(text: string, origin: string): RuleSetDocument {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `reading rule set ${origin}: ${errorMessage(err).split('\n')[0]}`,
      { file: origin },
      { cause: err },
    );
  }
  const parsed = ruleSetSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (i) => `${i.path.length ? `\`${i.path.join('.')}\`: ` : ''}${i.message}`,
    );
    throw new SluiceError(
      ErrorCode.CONFIG,
      `rule set ${origin} is invalid:\n  - ${problems.join('\n  - ')}`,
      { file: origin },
    );
  }
  return parsed.data;
}

/** One accepted rule set, compiled for one operator. */
export interface ActiveRules<C> {
  /** The version records judged by this set carry. */
  readonly version: number;
  /** What the operator built from the document. */
  readonly compiled: C;
  /** Where it came from (file path, URL, `inline`). */
  readonly origin: string;
}

/** Counters of a reloadable rule set, readable by metrics. */
export interface RuleMetrics {
  /** Version of the set judging records now (0 before the first set). */
  readonly ruleVersion: number;
  /** New sets accepted after the first one. */
  readonly ruleReloads: number;
  /** New sets rejected (invalid document, compile error, version not newer). */
  readonly ruleRejects: number;
  /** Failures to read the rule source (file missing, HTTP error). */
  readonly ruleSourceErrors: number;
  /** Message of the last rejection or read failure, if any. */
  readonly lastRuleError: string | undefined;
}

/**
 * Holds the active rule set of one operator and the next one. `offer` (off the hot path)
 * compiles and validates; `take` (at the start of a batch) swaps.
 */
export class RuleSlot<C> implements RuleMetrics {
  private active: ActiveRules<C> | undefined;
  private pending: ActiveRules<C> | undefined;
  private lastText: string | undefined;
  private lastRejected: string | undefined;
  private nextVersion = 1;
  private waiters: (() => void)[] = [];

  ruleReloads = 0;
  ruleRejects = 0;
  ruleSourceErrors = 0;
  lastRuleError: string | undefined;

  private readonly build: (doc: RuleSetDocument, origin: string) => C;
  private readonly log: () => Logger | undefined;
  private readonly stage: () => string;

  /** `build` compiles the part of a document this operator uses and throws when it cannot. */
  constructor(
    build: (doc: RuleSetDocument, origin: string) => C,
    log: () => Logger | undefined,
    stage: () => string,
  ) {
    this.build = build;
    this.log = log;
    this.stage = stage;
  }

  /** Version of the set judging records now. */
  get ruleVersion(): number {
    return this.active?.version ?? 0;
  }

  /** Version that the next batch will use (the pending one when a new set waits). */
  get latestVersion(): number {
    return this.pending?.version ?? this.ruleVersion;
  }

  /**
   * Compiles rule-set `text` from `origin`. Returns true when it became pending (or was
   * identical to the last one), false when it was rejected — then the running set stays, the
   * failure is logged and counted. With `initial`, a failure throws instead (startup).
   */
  offer(text: string, origin: string, initial = false): boolean {
    // The watcher and the poll may both see one change: judge each text once.
    if (text === this.lastText) return true;
    if (text === this.lastRejected) return false;
    try {
      const doc = parseRuleSet(text, origin);
      // Versions only grow, so no two sets of one operator share a version.
      if (doc.version !== undefined && doc.version < this.nextVersion) {
        throw new SluiceError(
          ErrorCode.CONFIG,
          `rule set ${origin} declares version ${doc.version}, which is not newer than version ${this.nextVersion - 1} already used; raise \`version\``,
          { file: origin },
        );
      }
      const version = doc.version ?? this.nextVersion;
      const compiled = this.build(doc, origin);
      this.nextVersion = version + 1;
      this.lastText = text;
      const set: ActiveRules<C> = { version, compiled, origin };
      if (this.active === undefined) this.active = set;
      else {
        this.pending = set;
        this.ruleReloads++;
        this.log()?.info(
          `Rule set version ${version} from \`${origin}\` compiled; it judges the next batch of \`${this.stage()}\``,
        );
      }
      this.wake();
      return true;
    } catch (err) {
      if (initial) throw err;
      this.lastRejected = text;
      this.ruleRejects++;
      this.lastRuleError = errorMessage(err);
      this.log()?.warn(
        `Rejected a new rule set for \`${this.stage()}\` from \`${origin}\`; version ${this.latestVersion} keeps running: ${this.lastRuleError}`,
        { stage: this.stage(), origin, ruleRejects: this.ruleRejects },
      );
      this.wake();
      return false;
    }
  }

  /** Installs a set built without a document (an inline expression), as the first set. */
  install(compiled: C, origin: string): void {
    this.active = { version: this.nextVersion++, compiled, origin };
  }

  /** Records a failure to read the rule source; the running set stays. */
  sourceFailed(origin: string, err: unknown): void {
    this.ruleSourceErrors++;
    this.lastRuleError = errorMessage(err);
    this.log()?.warn(
      `Could not read rule set \`${origin}\` for \`${this.stage()}\`; version ${this.latestVersion} keeps running: ${this.lastRuleError}`,
    );
    this.wake();
  }

  /** The set for the next batch: swaps in the pending set, if any. Call once per batch. */
  take(): ActiveRules<C> {
    if (this.pending !== undefined) {
      this.active = this.pending;
      this.pending = undefined;
    }
    if (this.active === undefined)
      throw new SluiceError(ErrorCode.STAGE, `stage \`${this.stage()}\` has no rule set`);
    return this.active;
  }

  /** Resolves at the next accept, reject or read failure (lets tests wait without timing). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
