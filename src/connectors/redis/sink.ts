/**
 * The `redis` sink: appends each record to a stream with `XADD` (pipelined, `batchSize`
 * commands per round trip), optionally capping the stream with `MAXLEN` (`~` by default, which
 * lets Redis trim whole nodes cheaply). A write resolves when Redis replied to every command of
 * the batch, so upstream acknowledgements never run ahead of the output. A record that cannot be
 * encoded (not an object without `field`, a value JSON cannot hold) goes to the `dlq` output; a
 * command Redis rejects (wrong key type, out of memory) fails the run with the stream named. A
 * server that cannot be reached is waited for with backoff, one warning per attempt.
 */
import type { Redis } from 'ioredis';
import { connectRedis, startConnecting } from '../../clients/redis.ts';
import type { TlsConfig } from '../../clients/tls.ts';
import { cancelledError, ErrorCode, errorMessage, SluiceError, wrapError } from '../../core/errors.ts';
import type { Batch } from '../../core/message.ts';
import { untilAborted } from '../../core/sending.ts';
import type { Sink, StageContext } from '../../core/stage.ts';
import { redactUrl } from '../../core/url.ts';
import { encodeEntry, type RedisFormat } from './entry.ts';

/** Config of {@link redisSink} (the parsed YAML config). */
export interface RedisSinkOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS. */
  url: string;
  /** TLS settings (also turns TLS on for a `redis://` URL); see `clients/redis-tls.ts`. */
  tls?: TlsConfig | true | undefined;
  /** Stream key to append to. */
  stream: string;
  /** Cap the stream at about (or, with `approximate: false`, exactly) this many entries. */
  maxLen?: number | undefined;
  /** Trim with `MAXLEN ~` (whole macro nodes, cheap) rather than exactly. */
  approximate: boolean;
  /** The entry field that holds the whole record; undefined: one field per top-level property. */
  field?: string | undefined;
  /** How values become field text. */
  format: RedisFormat;
  /** Most XADD commands per pipelined round trip. */
  batchSize: number;
  /** Longest wait between two connection attempts, ms. */
  maxRetryDelay?: number | undefined;
}

/** A {@link Sink} writing a Redis stream; see {@link redisSink}. */
export interface RedisSink extends Sink<unknown> {
  /** Entries Redis appended so far. */
  readonly written: number;
}

/**
 * A sink appending records to `options.stream`.
 *
 * @example
 * const sink = redisSink({ url: 'redis://127.0.0.1:6379', stream: 'scored', field: 'data', format: 'json', approximate: true, batchSize: 500 });
 * await new Pipeline('score').from(source).to(sink).run().done;
 */
export function redisSink(options: RedisSinkOptions): RedisSink {
  const { stream, field, format, batchSize } = options;
  const where = redactUrl(options.url);
  const trim: (string | number)[] =
    options.maxLen === undefined ? [] : ['MAXLEN', ...(options.approximate ? ['~'] : []), options.maxLen];
  let ctx: StageContext;
  let client: Redis | undefined;
  let written = 0;
  let rejected = 0;

  return {
    // Redis acknowledged every XADD before `write` resolved: it survives a crash of this process.
    durableOnBarrier: true,
    get written() {
      return written;
    },
    async open(c) {
      ctx = c;
      client = connectRedis({
        url: options.url,
        tls: options.tls,
        log: ctx.log,
        stage: ctx.name,
        purpose: `writing stream \`${stream}\``,
        maxRetryDelay: options.maxRetryDelay,
      });
      await startConnecting(client);
      // Fail before any source starts when the key holds something else than a stream.
      let type: string;
      try {
        // A command queued while the client waits to reconnect is never settled by
        // `disconnect()` (see connectRedis): give up on it when the run is cancelled.
        type = await untilAborted(client.type(stream), ctx.signal);
      } catch (err) {
        if (ctx.signal.aborted) throw cancelledError(ctx.signal.reason);
        throw wrapError(`checking key \`${stream}\` on Redis \`${where}\``, err, {
          stage: ctx.name,
          component: 'redis',
          stream,
        });
      }
      if (type !== 'none' && type !== 'stream') {
        throw new SluiceError(
          ErrorCode.STAGE,
          `key \`${stream}\` on Redis \`${where}\` holds a ${type}, not a stream; choose another \`stream\` or delete the key`,
          { stage: ctx.name, component: 'redis', stream },
        );
      }
    },
    async write(batch: Batch<unknown>) {
      const c = client as Redis;
      const { records, meta } = batch;
      for (let start = 0; start < records.length; start += batchSize) {
        const end = Math.min(records.length, start + batchSize);
        const p = c.pipeline();
        let n = 0;
        for (let i = start; i < end; i++) {
          let fields: string[];
          try {
            fields = encodeEntry(records[i], field, format);
          } catch (err) {
            rejected++;
            ctx.deadLetter(
              records[i],
              new SluiceError(
                ErrorCode.RECORD,
                `cannot write the record to stream \`${stream}\`: ${errorMessage(err)}`,
                { stream, field },
              ),
              meta?.[i],
            );
            continue;
          }
          p.xadd(stream, ...trim, '*', ...fields);
          n++;
        }
        if (n === 0) continue;
        let replies: [Error | null, unknown][];
        try {
          replies = (await p.exec()) ?? [];
        } catch (err) {
          throw wrapError(`appending ${n} entries to stream \`${stream}\` on Redis \`${where}\``, err, {
            stage: ctx.name,
            stream,
          });
        }
        for (const [err] of replies) {
          if (err) {
            throw wrapError(`appending to stream \`${stream}\` on Redis \`${where}\``, err, {
              stage: ctx.name,
              stream,
            });
          }
        }
        written += n;
      }
    },
    metrics() {
      return { written, rejected };
    },
    close() {
      client?.disconnect();
      client = undefined;
    },
  };
}
