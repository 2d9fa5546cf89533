/**
 * The connector factories of the subpath entries take the pipeline file's config: the examples
 * in their doc comments build (nothing connects until `open`), defaults are filled in, and a bad
 * config fails with one error naming every problem.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, SluiceError } from '../src/core/errors.ts';
import { kafkaSink, kafkaSource } from '../src/kafka.ts';
import { postgresSink, postgresSource } from '../src/postgres.ts';
import { pulsarSink, pulsarSource } from '../src/pulsar.ts';
import { redisSink, redisSource } from '../src/redis.ts';

describe('connector factories of sluice/kafka, /postgres, /redis, /pulsar', () => {
  it('build from the examples of their doc comments', () => {
    const stages = [
      kafkaSource({
        brokers: ['b1:9092', 'b2:9092'],
        topics: ['orders'],
        group: 'billing',
        start: 'earliest',
      }),
      kafkaSource({ brokers: 'localhost:9092', topic: 'in', group: 'copy' }),
      kafkaSink({ brokers: 'localhost:9092', topic: 'out', key: 'user', compression: 'zstd' }),
      postgresSink({ url: 'postgres://app@db/shop', table: 'orders', mode: 'upsert', key: ['id'] }),
      postgresSource({ url: 'postgres://app@db/shop', table: 'orders', column: 'id', follow: true }),
      redisSource({ url: 'redis://localhost:6379', streams: ['a', 'b'], group: 'etl' }),
      redisSink({ url: 'redis://localhost:6379', stream: 'out', maxLen: 100000 }),
      pulsarSource({
        url: 'http://localhost:8080',
        topic: 'jobs',
        subscription: 'workers',
        subscriptionType: 'shared',
      }),
      pulsarSink({ url: 'http://localhost:8080', topic: 'out', key: 'user' }),
    ];
    for (const s of stages) assert.equal(typeof s.close, 'function');
  });

  it('take a parallel step for the kafka source as a function', () => {
    const source = kafkaSource({
      brokers: 'localhost:9092',
      topic: 'in',
      group: 'g',
      parallel: { mode: 'unordered', step: async (r) => r },
    });
    assert.equal(typeof source.run, 'function');
  });

  it('report every problem of a bad config in one SLUICE_CONFIG error', () => {
    assert.throws(
      () => kafkaSink({ brokers: 'localhost:9092', topic: 'out', linger: 'soon', acks: 'some' } as never),
      (err: unknown) =>
        err instanceof SluiceError &&
        err.code === ErrorCode.CONFIG &&
        /^invalid config of the `kafka` sink: /.test(err.message) &&
        /linger/.test(err.message) &&
        /acks/.test(err.message),
    );
    assert.throws(
      () => postgresSink({ url: 'postgres://h/db', table: 't', batchSize: 0, mode: 'merge' } as never),
      /batchSize.*mode|mode.*batchSize/,
    );
  });
});
