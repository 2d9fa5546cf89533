/**
 * Content-based routing: {@link route} sends each record to the port of the first rule whose
 * predicate matches.
 */

import { ErrorCode, SluiceError } from '../core/errors.ts';
import { DLQ_PORT } from '../core/graph.ts';
import { batchOf, type RecordMeta } from '../core/message.ts';
import type { Emitter, Operator, StageContext } from '../core/stage.ts';

/** One routing rule: records for which `when` is true go to `port`. */
export interface RouteRule<T> {
  readonly when: (record: T) => boolean;
  readonly port: string;
}

/** Options of {@link route}. */
export interface RouteOptions {
  /** Port for records no rule matches. Without it, such a record is dead-lettered. */
  readonly default?: string;
}

/**
 * One input batch split by output port, for the operators that route records ({@link route},
 * {@link shard}, `CelRoute`): `add` files a record (and its meta) under a port index while the
 * operator walks the batch; `emit` then sends one batch per non-empty port, in port order, meta
 * aligned. Make a fresh one per input batch; call `emit` once, after the last `add`.
 *
 * @example
 * const split = new PortBatches<number>(['even', 'odd'], false);
 * for (const n of [1, 2, 3]) split.add(n % 2, n, undefined);
 * await split.emit(out); // [2] on `even`, then [1, 3] on `odd`
 */
export class PortBatches<T> {
  private readonly ports: readonly string[];
  private readonly records: T[][];
  private readonly meta: (RecordMeta | undefined)[][] | undefined;

  /** `withMeta`: keep each record's meta (false when the input batch has none to keep). */
  constructor(ports: readonly string[], withMeta: boolean) {
    this.ports = ports;
    this.records = ports.map(() => []);
    this.meta = withMeta ? ports.map(() => []) : undefined;
  }

  /** Files `record` with `meta` under port `port` (an index into the ports). */
  add(port: number, record: T, meta: RecordMeta | undefined): void {
    (this.records[port] as T[]).push(record);
    this.meta?.[port]?.push(meta);
  }

  /** Emits one batch per port that got records, in port order; resolves when all were accepted. */
  async emit(out: Emitter<T>): Promise<void> {
    for (let p = 0; p < this.ports.length; p++) {
      const recs = this.records[p] as T[];
      if (recs.length > 0) await out.emit(batchOf(recs, this.meta?.[p]), this.ports[p]);
    }
  }
}

/** The ports a route emits on, in rule order, then the default port. */
export function routePorts(rules: readonly RouteRule<unknown>[], options: RouteOptions = {}): string[] {
  const ports: string[] = [];
  for (const r of rules) if (!ports.includes(r.port)) ports.push(r.port);
  if (options.default !== undefined && !ports.includes(options.default)) ports.push(options.default);
  return ports;
}

/**
 * Sends each record to the port of the first rule whose `when` returns true, or to the
 * `default` port. A record no rule matches, with no default, goes to the dead-letter output
 * with an error naming the ports it missed; a throwing predicate dead-letters its record too.
 * One batch per port per input batch, meta aligned. Several rules may share a port. Every
 * port must be connected (with {@link Stream.route} it is), else the run fails when the first
 * record reaches it. Signals go to every port.
 *
 * @example
 * const { eu, us, rest } = stream.route(
 *   [{ when: (r) => r.region === 'eu', port: 'eu' }, { when: (r) => r.region === 'us', port: 'us' }],
 *   { default: 'rest' },
 * );
 */
export function route<T>(rules: readonly RouteRule<T>[], options: RouteOptions = {}): Operator<T, T> {
  const ports = routePorts(rules as readonly RouteRule<unknown>[], options);
  if (ports.length === 0) {
    throw new SluiceError(ErrorCode.CONFIG, 'route needs at least one rule or a `default` port');
  }
  for (const p of ports) {
    if (p === '' || p === DLQ_PORT) {
      throw new SluiceError(
        ErrorCode.CONFIG,
        `route port \`${p}\` is not allowed; \`dlq\` and the empty name are reserved`,
      );
    }
  }
  const rulePort = rules.map((r) => ports.indexOf(r.port));
  const defaultPort = options.default === undefined ? -1 : ports.indexOf(options.default);
  const whens = rules.map((r) => r.when);
  let ctx: StageContext;

  return {
    open(c) {
      ctx = c;
    },
    async process(input, out) {
      const { records, meta } = input;
      const n = records.length;
      const split = new PortBatches<T>(ports, meta !== undefined);
      for (let i = 0; i < n; i++) {
        const r = records[i] as T;
        let target = defaultPort;
        try {
          for (let k = 0; k < whens.length; k++) {
            if ((whens[k] as (record: T) => boolean)(r)) {
              target = rulePort[k] as number;
              break;
            }
          }
        } catch (err) {
          ctx.deadLetter(r, err, meta?.[i]);
          continue;
        }
        if (target < 0) {
          ctx.deadLetter(
            r,
            new SluiceError(
              ErrorCode.RECORD,
              `no route matched the record (ports: ${ports.map((p) => `\`${p}\``).join(', ')}); add a rule for it or a \`default\` port`,
              { stage: ctx.name },
            ),
            meta?.[i],
          );
          continue;
        }
        split.add(target, r, meta?.[i]);
      }
      await split.emit(out);
    },
  };
}
