/**
 * The `kafka` source and sink run the connector conformance suite against the real broker
 * (`npm run services -- up kafka`, which `npm test` runs for this file's name). Every test gets
 * fresh topics; the source's consumer group is named after its topic.
 */
import { Admin } from '@platformatic/kafka';
import { createTopic, messageCount, produce, readValues } from '../../src/connectors/kafka/test-helpers.ts';
import { connectorConformance } from './conformance.ts';

const BROKERS = [process.env.SLUICE_KAFKA_BROKERS ?? '127.0.0.1:9092'];
const PARTITIONS = 2;
const topics: string[] = [];

async function topic(name: string): Promise<string> {
  const t = await createTopic(BROKERS, name, PARTITIONS);
  topics.push(t);
  return t;
}

connectorConformance({
  name: 'kafka',
  source: {
    create: () => topic('conf-in'),
    input: (place) => ({
      kafka: {
        brokers: BROKERS[0],
        topic: place,
        group: `${place}-g`,
        batchSize: 50,
        idleTimeout: '2s',
        // A SIGKILLed member holds its partitions this long; the restart waits for it.
        sessionTimeout: '6s',
      },
    }),
    async write(place, items) {
      // Item i goes to partition i % PARTITIONS, so its offset there is i / PARTITIONS.
      await produce(
        BROKERS,
        place,
        items.map((it, i) => ({
          value: 'bad' in it ? `{"id": ${it.bad}}` : JSON.stringify(it),
          partition: i % PARTITIONS,
        })),
      );
    },
    // README: a restore starts each partition's tracker at the checkpoint's offset and skips what
    // the group re-delivers before it, so records reach an exactly-once sink once.
    delivery: 'exactly-once',
    ends: 'when-idle',
    // A clean end (idle timeout) commits everything emitted to the group.
    remembers: true,
    badInput: {
      position: (place, index) => ({
        topic: place,
        partition: index % PARTITIONS,
        offset: Math.floor(index / PARTITIONS),
      }),
    },
  },
  sink: {
    create: () => topic('conf-out'),
    output: (place) => ({ kafka: { brokers: BROKERS[0], topic: place } }),
    async read(place) {
      return (await readValues(BROKERS, place)).map((v) => JSON.parse(v) as unknown);
    },
    progress: (place) => messageCount(BROKERS, place),
    // README: at-least-once unless `exactlyOnce`, which needs a `kafka` input (this one is a file).
    delivery: 'at-least-once',
    acceptsAll: 'every record encodes as JSON',
  },
  async cleanup() {
    if (topics.length === 0) return;
    const admin = new Admin({ clientId: 'sluice-it', bootstrapBrokers: BROKERS });
    try {
      await admin.deleteTopics({ topics });
    } finally {
      await admin.close();
    }
  },
});
