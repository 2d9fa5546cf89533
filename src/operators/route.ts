/**
 * Content-based routing: {@link route} sends each record to the port of the first rule whose
 * predicate matches.
 */
import { batchOf, type RecordMeta } from '../core/batch.ts';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import { DLQ_PORT } from '../core/graph.ts';
import type { Operator, StageContext } from '../core/stage.ts';

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
      const byPort: T[][] = ports.map(() => []);
      const metaByPort: (RecordMeta | undefined)[][] | undefined = meta ? ports.map(() => []) : undefined;
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
        (byPort[target] as T[]).push(r);
        metaByPort?.[target]?.push(meta?.[i]);
      }
      for (let p = 0; p < ports.length; p++) {
        const recs = byPort[p] as T[];
        if (recs.length > 0) await out.emit(batchOf(recs, metaByPort?.[p]), ports[p]);
      }
    },
  };
}
