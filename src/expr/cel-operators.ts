/**
 * The CEL operators: {@link CelFilter} keeps records for which an expression is true,
 * {@link CelMap} adds fields computed by expressions, {@link CelRoute} sends each record to the
 * output port of the first case whose condition holds.
 *
 * Each takes its rules inline or from a reloadable rule set (`rules: { file | url }`). With a
 * rule set, a new version is compiled off the hot path and swapped in between batches; every
 * output record carries the version that judged it in `meta.attributes['ruleVersion.<stage>']`.
 * A record whose evaluation fails (missing field, type error…) goes to the dead-letter output
 * and the run goes on.
 */

import { ErrorCode, SluiceError } from '../core/errors.ts';
import { keptBatch, withOrigin } from '../core/kept-batch.ts';
import type { Batch, RecordMeta } from '../core/message.ts';
import type { Emitter, Operator, StageContext } from '../core/stage.ts';
import { PortBatches } from '../operators/route.ts';
import { type CompiledExpression, compileExpression, toRecordValue } from './cel.ts';
import type { ExprLimits } from './limits.ts';
import { type RuleSource, type RulesSourceOptions, ruleSource } from './reload.ts';
import {
  type MapRules,
  mapRulesSchema,
  type RouteCase,
  type RuleMetrics,
  type RuleSetDocument,
  RuleSlot,
  routeCaseSchema,
} from './rules.ts';

/** Options every CEL operator shares. */
export interface CelOperatorOptions {
  /** Reloadable rule set; the operator uses its part of the document (`filter`, `map`, `routes`). */
  readonly rules?: RulesSourceOptions | undefined;
  /** Expression limits; missing fields take the defaults. */
  readonly limits?: Partial<ExprLimits> | undefined;
  /**
   * Stamp `meta.attributes['ruleVersion.<stage>']` on every output record. Default: true with
   * `rules`, false without (an inline rule never changes).
   */
  readonly stampVersion?: boolean | undefined;
}

/** Key of the rule-set version in `meta.attributes` for stage `stage`. */
export function ruleVersionKey(stage: string): string {
  return `ruleVersion.${stage}`;
}

const NO_META: RecordMeta = { source: 'unknown' };

/**
 * Milliseconds of synchronous evaluation after which a CEL operator gives the event loop a turn
 * in the middle of a batch: a batch of records that each use their whole evaluation budget can
 * take seconds, and until the loop turns, SIGINT/SIGTERM, timers and I/O wait.
 */
const SLICE_MS = 25;

/** The clock is read once every this many records (a mask: 64 - 1). */
const SLICE_CHECK = 63;

/** True when record `i` ends a check interval and the slice that started at `since` is used up. */
function sliceUsed(i: number, since: number): boolean {
  return (i & SLICE_CHECK) === SLICE_CHECK && performance.now() - since >= SLICE_MS;
}

/** One event-loop turn (signals, timers, I/O run); throws when the run was cancelled meanwhile. */
async function giveTurn(signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  signal?.throwIfAborted();
}

/** What the three operators share: the rule slot, the reload source, metrics and version stamps. */
abstract class CelOperator<C> implements Operator, RuleMetrics {
  protected readonly slot: RuleSlot<C>;
  protected ctx: StageContext | undefined;
  protected readonly stamp: boolean;
  /** Expression limits for inline rules and every rule set loaded later. */
  protected readonly limits: Partial<ExprLimits> | undefined;
  private readonly source: RuleSource | undefined;
  private readonly hasInline: boolean;
  private stampKey = '';
  private stampVersion = -1;
  private stampAttrs: Readonly<Record<string, number>> = {};

  constructor(options: CelOperatorOptions, inline: C | undefined) {
    this.slot = new RuleSlot<C>(
      (doc, origin) => this.fromDocument(doc, origin),
      () => this.ctx?.log,
      () => this.ctx?.name ?? this.kind(),
    );
    this.source = options.rules ? ruleSource(options.rules) : undefined;
    this.hasInline = inline !== undefined;
    if (inline !== undefined) this.slot.install(inline, 'inline');
    if (inline === undefined && this.source === undefined) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `\`${this.kind()}\` needs its rules inline or a \`rules\` source`,
      );
    }
    this.stamp = options.stampVersion ?? this.source !== undefined;
    this.limits = options.limits;
  }

  /** The component name, for messages. */
  protected abstract kind(): string;
  /** Compiles this operator's part of a rule-set document; throws when it is missing or invalid. */
  protected abstract fromDocument(doc: RuleSetDocument, origin: string): C;
  abstract process(batch: Batch, out: Emitter<unknown>): void | Promise<void>;

  /**
   * Loads the rule set (when there is a source) and starts watching it. A source that cannot be
   * read at startup falls back to the inline rules if there are any; a set that does not
   * compile fails the start.
   */
  async open(ctx: StageContext): Promise<void> {
    this.ctx = ctx;
    this.stampKey = ruleVersionKey(ctx.name);
    const source = this.source;
    if (source === undefined) return;
    let text: string | undefined;
    try {
      text = await source.load(ctx.signal);
    } catch (err) {
      if (!this.hasInline)
        throw new SluiceError(
          ErrorCode.CONFIG,
          `loading rule set ${source.origin}: ${(err as Error).message}`,
          { stage: ctx.name },
          { cause: err },
        );
      this.slot.sourceFailed(source.origin, err);
    }
    if (text !== undefined) {
      if (this.hasInline) this.slot.offer(text, source.origin);
      else this.slot.offer(text, source.origin, true);
    }
    source.start(
      { clock: ctx.clock, signal: ctx.signal },
      (t) => this.slot.offer(t, source.origin),
      (err) => this.slot.sourceFailed(source.origin, err),
    );
  }

  /** Checks the rule source for a new set now (what a poll tick does); resolves once it was judged. */
  reload(): Promise<void> {
    return this.source?.check() ?? Promise.resolve();
  }

  /** Resolves at the next accepted or rejected set or read failure. */
  ruleChange(): Promise<void> {
    return this.slot.changed();
  }

  /** Rule-set gauges for the run's metrics snapshot (and the CLI status). */
  metrics(): Readonly<Record<string, number>> {
    return {
      ruleVersion: this.slot.ruleVersion,
      ruleReloads: this.slot.ruleReloads,
      ruleRejects: this.slot.ruleRejects,
      ruleSourceErrors: this.slot.ruleSourceErrors,
    };
  }

  get ruleVersion(): number {
    return this.slot.ruleVersion;
  }
  get ruleReloads(): number {
    return this.slot.ruleReloads;
  }
  get ruleRejects(): number {
    return this.slot.ruleRejects;
  }
  get ruleSourceErrors(): number {
    return this.slot.ruleSourceErrors;
  }
  get lastRuleError(): string | undefined {
    return this.slot.lastRuleError;
  }

  close(): void {
    this.source?.close();
  }

  /** A new meta object for an output record, carrying the rule version. */
  protected stamped(meta: RecordMeta | undefined, version: number): RecordMeta {
    if (version !== this.stampVersion) {
      this.stampVersion = version;
      this.stampAttrs = Object.freeze({ [this.stampKey]: version });
    }
    const m = meta ?? NO_META;
    const attributes =
      m.attributes === undefined ? this.stampAttrs : { ...m.attributes, [this.stampKey]: version };
    return { ...m, attributes };
  }

  protected dead(record: unknown, err: unknown, meta: RecordMeta | undefined): void {
    (this.ctx as StageContext).deadLetter(record, err, meta);
  }
}

/** Compiles one expression of a rule (inline or from a rule set) under the operator's limits. */
function compileRule(
  source: string,
  what: string,
  result: 'bool' | 'any',
  limits: Partial<ExprLimits> | undefined,
): CompiledExpression {
  return compileExpression(source, { what, result, ...(limits ? { limits } : {}) });
}

/** The operator's part of a rule-set document (`filter`, `map`, `routes`); a config error when it is missing. */
function partOf<K extends 'filter' | 'map' | 'routes'>(
  doc: RuleSetDocument,
  key: K,
  origin: string,
): NonNullable<RuleSetDocument[K]> {
  const part = doc[key];
  if (part === undefined)
    throw new SluiceError(ErrorCode.CONFIG, `rule set ${origin} has no \`${key}\``, { file: origin });
  return part as NonNullable<RuleSetDocument[K]>;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object'
    ? 'map'
    : typeof v === 'number'
      ? 'double'
      : typeof v === 'bigint'
        ? 'int'
        : typeof v;
}

/** Options of {@link CelFilter}. */
export interface CelFilterOptions extends CelOperatorOptions {
  /** The condition; records for which it is true pass. Optional with `rules` (then the fallback). */
  readonly expr?: string | undefined;
}

/**
 * Keeps the records for which a CEL condition is true. A record for which it fails or is not
 * a bool goes to the dead-letter output.
 *
 * @example
 * p.from(source).via(new CelFilter({ expr: 'risk > 50 && country in ["US", "DE"]' })).to(sink);
 */
export class CelFilter extends CelOperator<CompiledExpression> {
  /**
   * The record fields it reads, for projection (see `core/projection.ts`): an inline expression's
   * fields; undefined with a rule set, whose next version may read others.
   */
  readonly readsFields: readonly string[] | undefined;
  /** It emits the records it keeps as they came: what its consumers read is read too. */
  readonly passesRecords = true;

  constructor(options: CelFilterOptions | string) {
    const opts: CelFilterOptions = typeof options === 'string' ? { expr: options } : options;
    const inline =
      opts.expr === undefined ? undefined : compileRule(opts.expr, 'filter', 'bool', opts.limits);
    super(opts, inline);
    this.readsFields = opts.rules === undefined ? inline?.fields : undefined;
  }

  protected kind(): string {
    return 'filter';
  }

  protected fromDocument(doc: RuleSetDocument, origin: string): CompiledExpression {
    return compileRule(partOf(doc, 'filter', origin), `filter (rule set ${origin})`, 'bool', this.limits);
  }

  process(batch: Batch, out: Emitter<unknown>): Promise<void> {
    const active = this.slot.take();
    const expr = active.compiled;
    const run: FilterRun = {
      expr,
      version: active.version,
      batch,
      // Read only when the expression or a stamp needs it: a byte source's batch builds two
      // objects per record on that read (see `core/kept-batch.ts`).
      meta: expr.usesMeta || this.stamp ? batch.meta : undefined,
      keep: [],
      kept: [],
      keepMeta: this.stamp ? [] : undefined,
    };
    const n = batch.records.length;
    let i = this.filterSlice(run, 0);
    if (i >= n) return this.emitKept(run, out);
    return (async () => {
      while (i < n) {
        await giveTurn(this.ctx?.signal);
        i = this.filterSlice(run, i);
      }
      return this.emitKept(run, out);
    })();
  }

  /** Judges records from `from` on until the batch ends or the time slice is used up; returns where it stopped. */
  private filterSlice(run: FilterRun, from: number): number {
    const { expr, batch, meta, keep, kept, keepMeta } = run;
    const records = batch.records;
    const evaluate = expr.evaluate;
    const n = records.length;
    const since = performance.now();
    let i = from;
    // The try block spans the loop, not each record: it resumes after a failed record.
    while (i < n) {
      try {
        for (; i < n; i++) {
          const r = records[i];
          const v = evaluate(r, meta?.[i]);
          if (v === true) {
            keep.push(r);
            kept.push(i);
            if (keepMeta !== undefined) keepMeta.push(this.stamped(meta?.[i], run.version));
          } else if (v !== false) {
            this.dead(
              r,
              new SluiceError(
                ErrorCode.RECORD,
                `filter expression \`${expr.source}\` gave a ${typeName(v)}, not a bool`,
                {
                  component: 'cel',
                  expression: expr.source,
                },
              ),
              batch.meta?.[i],
            );
          }
          if (sliceUsed(i, since)) return i + 1;
        }
      } catch (err) {
        const m = batch.meta?.[i];
        this.dead(records[i], meta === undefined ? failureWithMeta(expr, records[i], m, err) : err, m);
        i++;
      }
    }
    return i;
  }

  private emitKept(run: FilterRun, out: Emitter<unknown>): Promise<void> {
    const { batch, keep } = run;
    if (keep.length === batch.records.length && !this.stamp) return out.emit(batch);
    if (run.keepMeta !== undefined) return out.emit(withOrigin(keep, run.keepMeta, batch.origin));
    return out.emit(keptBatch(batch, keep, run.kept));
  }
}

/**
 * The error `expr` throws on `record` given its meta `m`, when it threw `err` evaluated without
 * (a loop that does not read the batch's meta): evaluated again with it, so that the message
 * names the record's position as before (an evaluation-budget error does). Evaluation is pure,
 * so it fails again the same way; only failing records pay for the second run.
 */
function failureWithMeta(
  expr: CompiledExpression,
  record: unknown,
  m: RecordMeta | undefined,
  err: unknown,
): unknown {
  if (m === undefined) return err;
  try {
    expr.evaluate(record, m);
  } catch (again) {
    return again;
  }
  return err;
}

/** The state of one batch through {@link CelFilter}, kept across time slices. */
interface FilterRun {
  readonly expr: CompiledExpression;
  readonly version: number;
  readonly batch: Batch;
  /** `batch.meta` when the expression or a stamp reads it; else undefined (not read). */
  readonly meta: Batch['meta'];
  readonly keep: unknown[];
  /** The index in `batch` of each kept record. */
  readonly kept: number[];
  /** The kept records' stamped meta, with a stamp. */
  readonly keepMeta: RecordMeta[] | undefined;
}

/** Options of {@link CelMap}. */
export interface CelMapOptions extends CelOperatorOptions {
  /** Computed fields: name → expression over the input record. Optional with `rules`. */
  readonly fields?: Readonly<Record<string, string>> | undefined;
  /** Fields removed from the output record (before the computed fields are set). */
  readonly drop?: readonly string[] | undefined;
}

interface CompiledMap {
  readonly fields: readonly (readonly [string, CompiledExpression])[];
  readonly drop: readonly string[];
  /** True when an expression reads `meta`. */
  readonly usesMeta: boolean;
}

/**
 * Adds fields computed by CEL expressions to each record, as a new record (the input is never
 * changed). Every expression sees the input record. Records that are not objects, and records
 * for which an expression fails, go to the dead-letter output.
 *
 * @example
 * new CelMap({ fields: { total: 'price * qty' }, drop: ['tmp'] });
 */
export class CelMap extends CelOperator<CompiledMap> {
  constructor(options: CelMapOptions) {
    const inline =
      options.fields === undefined
        ? undefined
        : compileMap({ fields: options.fields, drop: options.drop }, 'inline', options.limits);
    super(options, inline);
  }

  protected kind(): string {
    return 'map';
  }

  protected fromDocument(doc: RuleSetDocument, origin: string): CompiledMap {
    return compileMap(partOf(doc, 'map', origin), `rule set ${origin}`, this.limits);
  }

  async process(batch: Batch, out: Emitter<unknown>): Promise<void> {
    const active = this.slot.take();
    const { fields, drop, usesMeta } = active.compiled;
    const records = batch.records;
    const stamp = this.stamp;
    // Read only when an expression or a stamp needs it, as in CelFilter (see `core/kept-batch.ts`).
    const meta = usesMeta || stamp ? batch.meta : undefined;
    const outRecords: unknown[] = [];
    const kept: number[] = [];
    const outMeta: RecordMeta[] | undefined = stamp ? [] : undefined;
    const values: unknown[] = new Array(fields.length);
    let since = performance.now();
    next: for (let i = 0; i < records.length; i++) {
      if (sliceUsed(i, since)) {
        await giveTurn(this.ctx?.signal);
        since = performance.now();
      }
      const r = records[i];
      const m = meta?.[i];
      if (typeof r !== 'object' || r === null || Array.isArray(r)) {
        this.dead(
          r,
          new SluiceError(ErrorCode.RECORD, `map needs records that are objects, got ${typeName(r)}`, {
            component: 'cel',
          }),
          batch.meta?.[i],
        );
        continue;
      }
      for (let f = 0; f < fields.length; f++) {
        const expr = (fields[f] as readonly [string, CompiledExpression])[1];
        try {
          values[f] = toRecordValue(expr.evaluate(r, m));
        } catch (err) {
          const bm = batch.meta?.[i];
          this.dead(r, meta === undefined ? failureWithMeta(expr, r, bm, err) : err, bm);
          continue next;
        }
      }
      const o: Record<string, unknown> = { ...(r as Record<string, unknown>) };
      for (const d of drop) delete o[d];
      for (let f = 0; f < fields.length; f++)
        o[(fields[f] as readonly [string, CompiledExpression])[0]] = values[f];
      outRecords.push(o);
      kept.push(i);
      if (outMeta !== undefined) outMeta.push(this.stamped(m, active.version));
    }
    return out.emit(
      outMeta !== undefined
        ? withOrigin(outRecords, outMeta, batch.origin)
        : keptBatch(batch, outRecords, kept),
    );
  }
}

function compileMap(rules: MapRules, origin: string, limits: Partial<ExprLimits> | undefined): CompiledMap {
  if (rules.fields !== undefined && Object.hasOwn(rules.fields, '__proto__')) {
    throw new SluiceError(ErrorCode.CONFIG, `map rules (${origin}): \`__proto__\` cannot be a field name`);
  }
  const parsed = mapRulesSchema.safeParse(rules);
  if (!parsed.success) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `map rules (${origin}) are invalid: ${parsed.error.issues.map((i) => `\`${i.path.join('.')}\`: ${i.message}`).join('; ')}`,
    );
  }
  const fields = Object.entries(parsed.data.fields).map(
    ([name, src]) => [name, compileRule(src, `map field \`${name}\``, 'any', limits)] as const,
  );
  return { fields, drop: parsed.data.drop ?? [], usesMeta: fields.some(([, e]) => e.usesMeta) };
}

/** Options of {@link CelRoute}. */
export interface CelRouteOptions extends CelOperatorOptions {
  /** Cases tried in order; the first true `when` sends the record to port `to`. Optional with `rules`. */
  readonly cases?: readonly RouteCase[] | undefined;
  /** Port for records no case matches; without it they go to the dead-letter output. */
  readonly default?: string | undefined;
}

interface CompiledRoute {
  /** `port`: the index of the case's `to` in `ports`. */
  readonly cases: readonly { readonly when: CompiledExpression; readonly port: number }[];
  /** Index of the `default` port in `ports`; -1 without one. */
  readonly fallback: number;
  /** Every port, in first-mention order (emission order). */
  readonly ports: readonly string[];
}

/**
 * Sends each record to the output port of the first case whose condition is true, or to
 * `default`. A record no case matches (without `default`) or whose condition fails goes to
 * the dead-letter output. Connect each port (`stream.side(port)`, or `outputs:` in YAML).
 *
 * @example
 * const r = p.from(source).via(new CelRoute({ cases: [{ when: 'risk > 90', to: 'high' }], default: 'out' }));
 * r.side('high').to(alerts); r.to(rest);
 */
export class CelRoute extends CelOperator<CompiledRoute> {
  constructor(options: CelRouteOptions) {
    const inline =
      options.cases === undefined
        ? undefined
        : compileRoute(options.cases, options.default, 'inline', options.limits);
    super(options, inline);
  }

  protected kind(): string {
    return 'route';
  }

  protected fromDocument(doc: RuleSetDocument, origin: string): CompiledRoute {
    return compileRoute(partOf(doc, 'routes', origin), doc.default, `rule set ${origin}`, this.limits);
  }

  async process(batch: Batch, out: Emitter<unknown>): Promise<void> {
    const active = this.slot.take();
    const { cases, fallback, ports } = active.compiled;
    const records = batch.records;
    const meta = batch.meta;
    const stamp = this.stamp;
    const split = new PortBatches<unknown>(ports, meta !== undefined || stamp);
    let since = performance.now();
    next: for (let i = 0; i < records.length; i++) {
      if (sliceUsed(i, since)) {
        await giveTurn(this.ctx?.signal);
        since = performance.now();
      }
      const r = records[i];
      const m = meta?.[i];
      let to = fallback;
      for (let c = 0; c < cases.length; c++) {
        const k = cases[c] as CompiledRoute['cases'][number];
        let v: unknown;
        try {
          v = k.when.evaluate(r, m);
        } catch (err) {
          this.dead(r, err, m);
          continue next;
        }
        if (v === true) {
          to = k.port;
          break;
        }
        if (v !== false) {
          this.dead(
            r,
            new SluiceError(
              ErrorCode.RECORD,
              `route condition \`${k.when.source}\` gave a ${typeName(v)}, not a bool`,
              { component: 'cel', expression: k.when.source },
            ),
            m,
          );
          continue next;
        }
      }
      if (to < 0) {
        this.dead(
          r,
          new SluiceError(
            ErrorCode.RECORD,
            `no route case matched the record (ports: ${ports.map((p) => `\`${p}\``).join(', ')}); add a case for it or a \`default\` port`,
            { component: 'cel' },
          ),
          m,
        );
        continue;
      }
      split.add(to, r, stamp ? this.stamped(m, active.version) : m);
    }
    await split.emit(out);
  }
}

function compileRoute(
  cases: readonly RouteCase[],
  fallback: string | undefined,
  origin: string,
  limits: Partial<ExprLimits> | undefined,
): CompiledRoute {
  const compiled = cases.map((c, i) => {
    const parsed = routeCaseSchema.safeParse(c);
    if (!parsed.success)
      throw new SluiceError(
        ErrorCode.CONFIG,
        `route case ${i + 1} (${origin}) is invalid: ${parsed.error.issues.map((x) => x.message).join('; ')}`,
      );
    return {
      when: compileRule(c.when, `route case ${i + 1}`, 'bool', limits),
      to: c.to,
    };
  });
  if (compiled.length === 0 && fallback === undefined)
    throw new SluiceError(ErrorCode.CONFIG, `route (${origin}) needs at least one case or a \`default\``);
  const ports = [...new Set([...compiled.map((c) => c.to), ...(fallback !== undefined ? [fallback] : [])])];
  return {
    cases: compiled.map((c) => ({ when: c.when, port: ports.indexOf(c.to) })),
    fallback: fallback === undefined ? -1 : ports.indexOf(fallback),
    ports,
  };
}
