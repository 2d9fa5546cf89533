/**
 * `openSocket` against the broker `npm run services -- up pulsar` starts: the socket is opened
 * without `permessage-deflate` (see `plainDispatcher` in `connection.ts`) and carries messages.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { StageContext } from '../../core/stage.ts';
import { openSocket, producerUrl, topicName } from './connection.ts';
import { deleteTopics, PULSAR_URL, readAll } from './test-helpers.ts';

const topic = `sluice-it-conn-${randomUUID().slice(0, 8)}`;
after(() => deleteTopics([topic]));

describe('pulsar openSocket', () => {
  it('opens sockets without permessage-deflate, which carry messages and receipts', async () => {
    const ep = { url: PULSAR_URL };
    const ctx = { log: { warn() {}, info() {} } } as unknown as StageContext;
    const ws = await openSocket(ep, producerUrl(ep, topicName(topic), {}), {
      ctx,
      signal: AbortSignal.timeout(30_000),
      what: `publishing to \`${topic}\``,
    });
    try {
      assert.equal(ws.extensions, '');
      const receipt = new Promise<{ result: string; context: string }>((resolve) =>
        ws.addEventListener('message', (ev) => resolve(JSON.parse(String(ev.data))), { once: true }),
      );
      ws.send(JSON.stringify({ payload: Buffer.from('{"a":1}').toString('base64'), context: 'c1' }));
      const r = await receipt;
      assert.equal(r.result, 'ok');
      assert.equal(r.context, 'c1');
    } finally {
      ws.close();
    }
    const stored = await readAll(topic);
    assert.deepEqual(
      stored.map((m) => m.payload),
      ['{"a":1}'],
    );
  });
});
