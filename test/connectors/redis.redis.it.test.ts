/**
 * The `redis` (Streams) source and sink run the connector conformance suite against the real
 * server (`npm run services -- up redis`, which `npm test` runs for this file's name). Every test
 * gets a fresh stream, deleted at the end; the source's group is named after its stream.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { connectorConformance } from './conformance.ts';

const REDIS_URL = process.env.SLUICE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const streams: string[] = [];
let client: Redis | undefined;
const redis = () => {
  client ??= new Redis(REDIS_URL);
  return client;
};

async function stream(name: string): Promise<string> {
  const s = `${name}-${randomUUID().slice(0, 8)}`;
  streams.push(s);
  return s;
}

connectorConformance({
  name: 'redis',
  source: {
    create: () => stream('conf-in'),
    input: (place) => ({
      redis: {
        url: REDIS_URL,
        stream: place,
        group: `${place}-g`,
        start: '0',
        field: 'data',
        batchSize: 50,
        idleTimeout: '2s',
      },
    }),
    async write(place, items) {
      const p = redis().pipeline();
      for (const it of items)
        p.xadd(place, '*', 'data', 'bad' in it ? `{"id": ${it.bad}}` : JSON.stringify(it));
      for (const [err] of (await p.exec()) ?? []) if (err) throw err;
    },
    // README: exactly-once into exactly-once sinks under checkpoints (a checkpoint lists the held
    // ids, so a restart under another consumer name emits none of them again).
    delivery: 'exactly-once',
    ends: 'when-idle',
    // A clean end acknowledges everything it handed on.
    remembers: true,
    badInput: { position: (place) => ({ stream: place }) },
  },
  sink: {
    create: () => stream('conf-out'),
    // Whole-object entries: one field per property (JSON), so a record that is not an object is rejected.
    output: (place) => ({ redis: { url: REDIS_URL, stream: place, format: 'json' } }),
    async read(place) {
      const entries = (await redis().xrange(place, '-', '+')) as [string, string[]][];
      return entries.map(([, fields]) => {
        const o: Record<string, unknown> = {};
        for (let i = 0; i + 1 < fields.length; i += 2)
          o[fields[i] as string] = JSON.parse(fields[i + 1] as string);
        return o;
      });
    },
    progress: (place) => redis().xlen(place),
    // README: commands unanswered when a connection drops are sent again (at-least-once).
    delivery: 'at-least-once',
    rejects: 'not an object',
  },
  async cleanup() {
    if (client === undefined) return;
    if (streams.length > 0) await client.del(...streams);
    client.disconnect();
  },
});
