/**
 * The `pulsar` source and sink run the connector conformance suite against a real broker
 * (`npm run services -- up pulsar`, which `npm test` runs for this file's name). Every test gets a
 * fresh topic, deleted at the end; the source's subscription is named after its topic.
 */
import { randomUUID } from 'node:crypto';
import {
  deleteTopics,
  PULSAR_URL,
  publish,
  readAll,
  storedCount,
} from '../../src/connectors/pulsar/test-helpers.ts';
import { connectorConformance } from './conformance.ts';

const topics: string[] = [];

async function topic(name: string): Promise<string> {
  const t = `${name}-${randomUUID().slice(0, 8)}`;
  topics.push(t);
  return t;
}

connectorConformance({
  name: 'pulsar',
  source: {
    create: () => topic('conf-in'),
    input: (place) => ({
      pulsar: {
        url: PULSAR_URL,
        topic: place,
        subscription: `${place}-s`,
        subscriptionType: 'key_shared',
        start: 'earliest',
        batchSize: 50,
        idleTimeout: '2s',
      },
    }),
    write: (place, items) =>
      publish(
        place,
        items.map((it) => ({
          payload: 'bad' in it ? `{"id": ${it.bad}}` : JSON.stringify(it),
          key: 'bad' in it ? 'bad' : `k${it.id % 7}`,
        })),
      ),
    // README: at-least-once — what a checkpoint covered and was not acknowledged yet is delivered again.
    delivery: 'at-least-once',
    ends: 'when-idle',
    // The subscription remembers what a clean run acknowledged.
    remembers: true,
    badInput: { position: (place) => ({ topic: `persistent://public/default/${place}` }) },
  },
  sink: {
    create: () => topic('conf-out'),
    // Keyed by `id`, so a record without one is rejected.
    output: (place) => ({ pulsar: { url: PULSAR_URL, topic: place, key: 'id' } }),
    async read(place) {
      return (await readAll(place)).map((m) => JSON.parse(m.payload) as unknown);
    },
    progress: (place) => storedCount(place),
    // README: messages without a receipt when a socket closes are sent again (at-least-once).
    delivery: 'at-least-once',
    rejects: { noId: true },
  },
  async cleanup() {
    await deleteTopics(topics);
  },
});
