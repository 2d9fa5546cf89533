import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { consumerUrl, multiConsumerUrl, producerUrl, topicName, where } from './connection.ts';
import { pulsarSourceConfig } from './spec.ts';

describe('pulsar connection', () => {
  it('normalises topic names and refuses bad ones with what to write', () => {
    assert.equal(topicName('events').full, 'persistent://public/default/events');
    assert.equal(topicName('acme/prod/events').full, 'persistent://acme/prod/events');
    assert.equal(topicName('non-persistent://a/b/c').domain, 'non-persistent');
    assert.throws(() => topicName('a/b'), /`a\/b` is not a Pulsar topic name; write `name`/);
    assert.throws(() => topicName('kafka://x/y/z'), /not a Pulsar topic name/);
  });

  it('builds socket URLs without credentials; messages show no password', () => {
    const ep = { url: 'https://user:s3cret@broker:8443/', token: 'tok-123456' };
    const c = consumerUrl(ep, topicName('a b'), 'sub/1', {
      subscriptionType: 'Key_Shared',
      pullMode: true,
      x: undefined,
    });
    assert.equal(
      c,
      'wss://broker:8443/ws/v2/consumer/persistent/public/default/a%20b/sub%2F1?subscriptionType=Key_Shared&pullMode=true',
    );
    assert.ok(!c.includes('s3cret') && !c.includes('tok-123456'));
    assert.equal(
      producerUrl({ url: 'http://127.0.0.1:8080' }, topicName('t'), { batchingEnabled: false }),
      'ws://127.0.0.1:8080/ws/v2/producer/persistent/public/default/t?batchingEnabled=false',
    );
    assert.match(
      multiConsumerUrl({ url: 'http://h:8080' }, 's', { pattern: 'persistent://public/default/o-.*' }, {}),
      /^ws:\/\/h:8080\/ws\/v3\/consumer\/s\?topicsPattern=persistent/,
    );
    assert.equal(where(ep), 'https://user:***@broker:8443/');
  });

  it('the source config reports every problem at once', () => {
    const r = pulsarSourceConfig.safeParse({
      url: 'pulsar://h:6650',
      topic: 'a',
      topics: ['b'],
      subscriptionType: 'failover',
      keySharedMode: 'sticky',
      maxRedeliveries: 3,
    });
    assert.ok(!r.success);
    const text = r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    assert.match(text, /url: must be the broker’s web service URL/);
    assert.match(text, /topic: give exactly one of `topic`, `topics` and `topicsPattern`/);
    assert.match(text, /keySharedMode: sticky key ranges cannot be set through Pulsar’s WebSocket API/);
    assert.match(text, /maxRedeliveries: the broker counts redeliveries for `shared` and `key_shared`/);
  });
});
