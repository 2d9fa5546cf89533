/**
 * The `pulsar` source: one consumer of a Pulsar subscription (`exclusive`, `failover`, `shared`
 * or `key_shared`) on one topic, several topics or a topic pattern, through the broker's WebSocket
 * API in pull mode (`consumer.ts`). It decodes each message (`json`, `text` or `raw`) and emits
 * batches whose meta carries the message id, key, properties, event or publish time and
 * redelivery count.
 *
 * Delivery is at-least-once; a message is acknowledged (an individual ack) only once the records
 * it became have reached every sink, never before (`acks.ts`):
 * - With checkpoints the runtime injects barriers; `position()` counts the messages handed on so
 *   far in this run, and `commit(position)` — called once the checkpoint holding it is stored —
 *   acknowledges exactly those.
 * - Without checkpoints the source emits its own barrier after a batch, at most once per
 *   `commitInterval`, and acknowledges what preceded it in `onBarrierComplete(id)`.
 * - A clean end (idle timeout, or a draining stop without checkpoints) acknowledges everything
 *   handed on; a failed, cancelled or killed run acknowledges nothing more, and the broker
 *   delivers those messages again — to this consumer after a restart, or at once to the other
 *   consumers of a `shared`, `key_shared` or `failover` subscription.
 *
 * A message that cannot be decoded goes to the `dlq` output (acknowledged by the same rule), or
 * with `badMessages: nack` is negatively acknowledged: the broker delivers it again after
 * `redeliveryDelay`, and after `maxRedeliveries` moves it to the dead-letter topic. With
 * `failedRecords: nack`, a record a later stage dead-letters (`recordFailed`) has its message
 * negatively acknowledged at once too, and its held delivery is skipped when acks catch up.
 *
 * A restore needs no read position (the subscription remembers what was acknowledged), but the
 * checkpoint lists the ids it covered and had not acknowledged (`position().held`): the restored
 * source acknowledges them and skips them when they come again, so a checkpoint's state never
 * counts a message twice on this consumer (on a shared subscription the broker may have given
 * them to another consumer meanwhile: at-least-once).
 */
import { randomUUID } from 'node:crypto';
import { cancelledError, ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import { barrier, type Position, type RecordMeta } from '../../core/message.ts';
import type { Emitter, Source, SourceContext } from '../../core/stage.ts';
import { decimalJsonParser } from '../../formats/json.ts';
import { HeldAcks } from './acks.ts';
import {
  consumerUrl,
  multiConsumerUrl,
  openSocket,
  type PulsarEndpoint,
  type TopicName,
  topicName,
  where,
} from './connection.ts';
import { ConsumerSocket } from './consumer.ts';
import { decodePayload, metaOf, type PulsarFormat } from './message.ts';

/** A subscription type, as the config spells it. */
export type SubscriptionType = 'exclusive' | 'failover' | 'shared' | 'key_shared';

const WS_TYPE: Record<SubscriptionType, string> = {
  exclusive: 'Exclusive',
  failover: 'Failover',
  shared: 'Shared',
  key_shared: 'Key_Shared',
};

/** Config of {@link pulsarSource} (the parsed YAML config). */
export interface PulsarSourceOptions extends PulsarEndpoint {
  /** Topics to read (one or more), or… */
  topics?: readonly string[] | undefined;
  /** …a regular expression over full topic names of one namespace (`persistent://public/default/orders-.*`). */
  topicsPattern?: string | undefined;
  /** Subscription name. */
  subscription: string;
  subscriptionType: SubscriptionType;
  /** Where a new subscription starts. */
  start: 'earliest' | 'latest';
  /** This consumer's name (shown in the broker's stats). */
  consumerName?: string | undefined;
  format: PulsarFormat;
  /** With `format: json`: fields read as exact decimals (`*`: every number); see `decimalReviver`. */
  decimals?: readonly string[] | undefined;
  /** Most messages per emitted batch. */
  batchSize: number;
  /** Longest a partial batch waits for more messages, ms. */
  maxWait: number;
  /** Most messages delivered to this process and not yet emitted (pull-mode permits). */
  receiverQueueSize: number;
  /** What an undecodable message becomes: a dead letter, or a negative ack. */
  badMessages: 'dlq' | 'nack';
  /**
   * A record a later stage dead-lettered (`Source.recordFailed`): its message is acknowledged
   * like any other (`dlq`, the default), or negatively acknowledged at once (`nack`).
   */
  failedRecords?: 'dlq' | 'nack' | undefined;
  /** Delay before a negatively acknowledged message is delivered again, ms. */
  redeliveryDelay: number;
  /** After this many redeliveries the broker moves a message to the dead-letter topic. */
  maxRedeliveries?: number | undefined;
  /** The dead-letter topic (default `<topic>-<subscription>-DLQ`). */
  deadLetterTopic?: string | undefined;
  /** End the input after this many ms without a message. */
  idleTimeout?: number | undefined;
  /** Without checkpoints: least time between two acknowledgement barriers, ms. */
  commitInterval: number;
  /** Fail when the broker stays unreachable this long, ms; default: wait. */
  connectTimeout?: number | undefined;
}

/** A {@link Source} reading a Pulsar subscription; see {@link pulsarSource}. */
export interface PulsarSource extends Source<unknown> {
  /** Messages acknowledged so far. */
  readonly acked: number;
}

/** How long the acknowledgements at the end of a run may take to leave the socket. */
const FLUSH_TIMEOUT_MS = 10_000;

/** Most held message ids a checkpoint lists (about 12 bytes each); past it they are only counted. */
export const MAX_LISTED = 50_000;

/**
 * A source consuming `options.topics` (or `options.topicsPattern`) as subscription
 * `options.subscription`.
 *
 * @example
 * const source = pulsarSource({
 *   url: 'http://127.0.0.1:8080', topics: ['jobs'], subscription: 'workers', subscriptionType: 'shared',
 *   start: 'earliest', format: 'json', batchSize: 500, maxWait: 50, receiverQueueSize: 1000,
 *   badMessages: 'dlq', redeliveryDelay: 1000, commitInterval: 1000,
 * });
 * await new Pipeline('work').from(source).to(stdoutSink({ format: 'jsonl' })).run().done;
 */
export function pulsarSource(options: PulsarSourceOptions): PulsarSource {
  const topics: TopicName[] = (options.topics ?? []).map(topicName);
  if ((topics.length === 0) === (options.topicsPattern === undefined)) {
    throw new SluiceError(ErrorCode.CONFIG, 'the pulsar source needs `topic`, `topics` or `topicsPattern`');
  }
  const { subscription } = options;
  const names =
    options.topicsPattern !== undefined
      ? `topics matching \`${options.topicsPattern}\``
      : topics.map((t) => `\`${t.full}\``).join(', ');
  const doing = `consuming ${names} as subscription \`${subscription}\` (${options.subscriptionType})`;
  const exact = options.format === 'json' ? decimalJsonParser(options.decimals) : undefined;
  const shownTopic =
    topics.length === 1
      ? (topics[0] as TopicName).full
      : (options.topicsPattern ?? topics.map((t) => t.full).join(','));
  const params = {
    subscriptionType: WS_TYPE[options.subscriptionType],
    subscriptionInitialPosition: options.start === 'earliest' ? 'Earliest' : 'Latest',
    pullMode: true,
    consumerName: options.consumerName,
    negativeAckRedeliveryDelay: options.redeliveryDelay,
    maxRedeliverCount: options.maxRedeliveries,
    deadLetterTopic:
      options.deadLetterTopic === undefined ? undefined : topicName(options.deadLetterTopic).full,
  };
  const url =
    topics.length === 1
      ? consumerUrl(options, topics[0] as TopicName, subscription, params)
      : multiConsumerUrl(
          options,
          subscription,
          options.topicsPattern !== undefined ? { pattern: options.topicsPattern } : { topics },
          params,
        );
  const runId = randomUUID();
  const acks = new HeldAcks();
  let ctx: SourceContext;
  let socket: ConsumerSocket | undefined;
  let records = 0;
  let deadLettered = 0;
  let nacked = 0;
  let redelivered = 0;
  let reconnects = 0;
  /**
   * Held messages a later stage failed (`failedRecords: nack`), negatively acknowledged at once,
   * with the redelivery counts of the deliveries that failed: each such delivery, still held, is
   * skipped when its turn to be acknowledged comes (an ack would take the message from the
   * retry, and its next delivery may be held already).
   */
  const failed = new Map<string, number[]>();
  let failedNacked = 0;
  /** Settles one held message on `s`: an ack, unless this delivery failed and was nacked already. */
  const settle = (s: ConsumerSocket | undefined, id: string): boolean => {
    const deliveries = failed.get(id);
    if (deliveries === undefined) return s?.ack(id) ?? false;
    // Held in order of delivery: the oldest failed delivery is the one settled now.
    deliveries.shift();
    if (deliveries.length === 0) failed.delete(id);
    return true;
  };
  const send = (id: string): boolean => settle(socket, id);
  /** Messages a restored checkpoint covered and may not have acknowledged: acked, never emitted again. */
  let covered = new Set<string>();
  /** The restored checkpoint held more messages than it could list. */
  let coveredUnlisted = 0;
  let coveredSkipped = 0;

  async function connect(signal: AbortSignal): Promise<ConsumerSocket> {
    const ws = await openSocket(options, url, {
      ctx,
      signal,
      what: doing,
      connectTimeout: options.connectTimeout,
    });
    return new ConsumerSocket(ws, options.receiverQueueSize);
  }

  /** Decodes taken messages into `out`; holds each one handed on (emitted or dead-lettered). */
  function intake(
    taken: ReturnType<ConsumerSocket['take']>,
    out: { records: unknown[]; meta: RecordMeta[] },
    s: ConsumerSocket,
  ): void {
    for (const m of taken) {
      if (covered.size > 0 && covered.delete(m.messageId)) {
        // In the restored checkpoint's state already: its ack had not reached the broker.
        coveredSkipped++;
        s.ack(m.messageId);
        continue;
      }
      const meta = metaOf(ctx.name, shownTopic, m);
      if ((m.redeliveryCount ?? 0) > 0) redelivered++;
      let value: unknown;
      try {
        value = decodePayload(m.payload, options.format, exact);
      } catch (err) {
        if (options.badMessages === 'nack') {
          nacked++;
          s.nack(m.messageId);
          continue;
        }
        acks.hold(m.messageId);
        deadLettered++;
        ctx.deadLetter(
          {
            messageId: m.messageId,
            key: m.key,
            properties: m.properties,
            payload: Buffer.from(m.payload, 'base64').toString('utf8'),
          },
          new SluiceError(
            ErrorCode.PARSE,
            `cannot decode message \`${m.messageId}\` of ${names} as \`${options.format}\`: ${errorMessage(err)}; it went to the dlq (or set \`badMessages: nack\` to have the broker redeliver it and, after \`maxRedeliveries\`, move it to a dead-letter topic)`,
            { topic: shownTopic, messageId: m.messageId },
          ),
          meta,
        );
        continue;
      }
      acks.hold(m.messageId);
      out.records.push(value);
      out.meta.push(meta);
    }
  }

  return {
    get acked() {
      return acks.acked;
    },
    open(c) {
      ctx = c;
    },
    restore(position: Position) {
      // The subscription remembers what was acknowledged; the checkpoint lists what it covered
      // and had not acknowledged when it was taken (those acks may not have reached the broker).
      if (position.subscription !== subscription) return;
      if (typeof position.held === 'string' && position.held !== '')
        covered = new Set(position.held.split(','));
      else if (typeof position.heldCount === 'number') coveredUnlisted = position.heldCount;
    },
    async run(out: Emitter<unknown>, c) {
      ctx = c;
      const stopOrCancel = AbortSignal.any([ctx.signal, ctx.stopSignal]);
      let s: ConsumerSocket;
      try {
        s = await connect(stopOrCancel);
      } catch (err) {
        if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
        if (ctx.stopSignal.aborted) return;
        throw err;
      }
      socket = s;
      // Acknowledge what the restored checkpoint covered; one delivered before these acks arrive
      // is acknowledged again and skipped (`intake`).
      for (const id of covered) s.ack(id);
      if (coveredUnlisted > 0)
        ctx.log.warn(
          `The restored checkpoint held ${coveredUnlisted} unacknowledged messages of ${names}, more than the ${MAX_LISTED} it lists; those the broker delivers again are emitted again (duplicates)`,
          { stage: ctx.name },
        );
      let lastBarrierAt = ctx.clock.now();
      let lastDataAt = ctx.clock.now();
      let progressed = false;
      while (!stopOrCancel.aborted) {
        if (s.closed !== undefined) {
          // The broker (or the network) closed the socket: what was not acknowledged comes
          // again; reconnect and go on.
          ctx.log.warn(
            `The consumer socket of ${names} closed (${s.closed.code}${s.closed.reason ? ` ${s.closed.reason}` : ''}); reconnecting to Pulsar \`${where(options)}\``,
            { stage: ctx.name },
          );
          reconnects++;
          try {
            s = await connect(stopOrCancel);
          } catch (err) {
            if (stopOrCancel.aborted) break;
            throw err;
          }
          socket = s;
        }
        const idleLeft =
          options.idleTimeout === undefined
            ? 1000
            : Math.max(1, options.idleTimeout - (ctx.clock.now() - lastDataAt));
        await s.wait(Math.min(1000, idleLeft), stopOrCancel);
        if (stopOrCancel.aborted) break;
        if (s.queued > 0 && s.queued < options.batchSize && options.maxWait > 0) {
          // Linger for a fuller batch, but not past `maxWait`.
          const until = ctx.clock.now() + options.maxWait;
          while (s.queued < options.batchSize && s.closed === undefined && !stopOrCancel.aborted) {
            const left = until - ctx.clock.now();
            if (left <= 0) break;
            const before = s.queued;
            await s.wait(0, stopOrCancel);
            if (s.queued === before) await new Promise((r) => setTimeout(r, Math.min(left, 5)));
          }
        }
        const now = ctx.clock.now();
        if (s.queued > 0) {
          const batch = { records: [] as unknown[], meta: [] as RecordMeta[] };
          intake(s.take(options.batchSize), batch, s);
          lastDataAt = now;
          progressed = true;
          if (batch.records.length > 0) {
            records += batch.records.length;
            acks.emitted();
            await out.emit({ kind: 'batch', records: batch.records, meta: batch.meta });
          } else acks.emitted();
        }
        const after = ctx.clock.now();
        if (!ctx.checkpointing && progressed && after - lastBarrierAt >= options.commitInterval) {
          progressed = false;
          lastBarrierAt = after;
          await out.signal(barrier(acks.nextBarrier()));
        }
        if (options.idleTimeout !== undefined && s.queued === 0 && after - lastDataAt >= options.idleTimeout)
          break;
      }
      if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
      if (!ctx.stopSignal.aborted) return;
      // A draining stop: what was delivered and not taken goes back to the broker on close.
    },
    recordFailed(meta) {
      if (options.failedRecords !== 'nack') return;
      const id = meta.position?.messageId;
      const delivery = Number(meta.position?.redeliveryCount ?? 0);
      // Only a delivery still held and not failed already (two records of one message may both
      // fail): one settled before its record failed (held in a window) is done with.
      if (typeof id !== 'string' || failed.get(id)?.includes(delivery) || !acks.holds(id)) return;
      failed.set(id, [...(failed.get(id) ?? []), delivery]);
      failedNacked++;
      // Now, not at the next checkpoint: a nack loses nothing (the message comes again), and the
      // retry need not wait for the output. Unsent (socket closed), the message comes again too.
      socket?.nack(id);
    },
    onBarrierComplete(id) {
      acks.barrierComplete(id, send);
    },
    commit(position: Position) {
      // A position of another run (one restored from) covers nothing this run holds.
      if (position.run !== runId || typeof position.handed !== 'number') return;
      acks.through(position.handed, send);
    },
    position() {
      const pos: Record<string, string | number> = { run: runId, subscription, handed: acks.handed };
      // `held`: what this checkpoint covers and is not acknowledged yet (see `restore`); a failed
      // delivery left to the broker's retry is not covered.
      if (acks.size > MAX_LISTED) pos.heldCount = acks.size;
      else if (acks.size > 0) {
        const ids = failed.size === 0 ? acks.heldIds() : acks.heldIds().filter((id) => !failed.has(id));
        // Base64 message ids hold no comma.
        if (ids.length > 0) pos.held = ids.join(',');
      }
      return pos;
    },
    metrics() {
      return {
        records,
        deadLettered,
        nacked,
        failedNacked,
        coveredSkipped,
        redelivered,
        held: acks.size,
        acked: acks.acked,
        ackUnsent: acks.unsent,
        queued: socket?.queued ?? 0,
        reconnects,
        barriers: acks.barriers,
      };
    },
    async close() {
      const s = socket;
      socket = undefined;
      if (s === undefined) return;
      try {
        // Reached after every stage ended; with the run not aborted, the sinks finished. Under
        // checkpoints a draining stop keeps its checkpoints, which a restart resumes from.
        const clean =
          ctx !== undefined && !ctx.signal.aborted && !(ctx.checkpointing && ctx.stopSignal.aborted);
        if (clean && acks.size > 0) acks.through(acks.handed, (id) => settle(s, id));
        // Let the acks leave before the close frame (the close handshake keeps their order).
        const deadline = Date.now() + FLUSH_TIMEOUT_MS;
        while (s.open && s.buffered > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      } finally {
        s.close();
      }
    },
  };
}
