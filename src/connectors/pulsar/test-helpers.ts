/**
 * Test helpers for the Pulsar integration tests: publish and read topics through the broker's
 * WebSocket API directly (not through the connector under test), and the broker's address.
 */

/** The broker's web service, as `npm run services -- up pulsar` starts it. */
export const PULSAR_URL =
  process.env.SLUICE_PULSAR_URL ?? `http://127.0.0.1:${process.env.SLUICE_PULSAR_WEB_PORT ?? 8080}`;
const WS = PULSAR_URL.replace(/^http/, 'ws');

/** `name` → `persistent://public/default/name`'s path part. */
function path(topic: string): string {
  return `persistent/public/default/${encodeURIComponent(topic)}`;
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.addEventListener('open', () => resolve(ws), { once: true });
    ws.addEventListener('error', () => reject(new Error(`cannot open ${url}`)), { once: true });
  });
}

/** One message to publish: a payload (text) and optionally a key and properties. */
export interface Outgoing {
  readonly payload: string;
  readonly key?: string | undefined;
  readonly properties?: Record<string, string> | undefined;
}

/** Publishes `messages` to `topic` in order, pipelined on one socket; resolves when every receipt came. */
export async function publish(topic: string, messages: readonly Outgoing[]): Promise<void> {
  if (messages.length === 0) return;
  const ws = await open(`${WS}/ws/v2/producer/${path(topic)}`);
  try {
    await new Promise<void>((resolve, reject) => {
      let done = 0;
      let sent = 0;
      const window = 500;
      const sendMore = (): void => {
        while (sent < messages.length && sent - done < window) {
          const m = messages[sent] as Outgoing;
          ws.send(
            JSON.stringify({
              payload: Buffer.from(m.payload).toString('base64'),
              key: m.key,
              properties: m.properties,
              context: String(sent),
            }),
          );
          sent++;
        }
      };
      ws.addEventListener('message', (ev) => {
        const r = JSON.parse(String(ev.data)) as { result: string; errorMsg?: string };
        if (r.result !== 'ok')
          reject(new Error(`publish to ${topic} failed: ${r.result} ${r.errorMsg ?? ''}`));
        done++;
        if (done === messages.length) resolve();
        else sendMore();
      });
      ws.addEventListener('close', () => reject(new Error(`the producer socket of ${topic} closed`)));
      sendMore();
    });
  } finally {
    ws.close();
  }
}

/** A message read back. */
export interface Incoming {
  /** The broker's message id (base64), as consumers see it. */
  readonly messageId: string;
  readonly payload: string;
  readonly key?: string;
  readonly properties?: Record<string, string>;
  readonly eventTime?: string;
}

/** Every message of `topic` from the start, read with a reader until `quietMs` pass without one. */
export async function readAll(topic: string, quietMs = 700): Promise<Incoming[]> {
  const ws = await open(`${WS}/ws/v2/reader/${path(topic)}?messageId=earliest&receiverQueueSize=1000`);
  const out: Incoming[] = [];
  try {
    await new Promise<void>((resolve) => {
      let timer = setTimeout(resolve, quietMs * 3);
      ws.addEventListener('message', (ev) => {
        const m = JSON.parse(String(ev.data)) as {
          messageId: string;
          payload: string;
          key?: string;
          properties?: Record<string, string>;
          eventTime?: string;
        };
        if (typeof m.payload !== 'string') return;
        out.push({ ...m, payload: Buffer.from(m.payload, 'base64').toString('utf8') });
        ws.send(JSON.stringify({ messageId: m.messageId }));
        clearTimeout(timer);
        timer = setTimeout(resolve, quietMs);
      });
    });
  } finally {
    ws.close();
  }
  return out;
}

/** Messages the broker stored on `topic` so far (admin stats `msgInCounter`; 0 before it exists). */
export async function storedCount(topic: string): Promise<number> {
  const res = await fetch(`${PULSAR_URL}/admin/v2/${path(topic)}/stats`);
  if (!res.ok) return 0;
  const s = (await res.json()) as { msgInCounter?: number };
  return s.msgInCounter ?? 0;
}

/** Deletes `topics` (forcefully, with their subscriptions); errors are ignored. */
export async function deleteTopics(topics: readonly string[]): Promise<void> {
  await Promise.all(
    topics.map((t) =>
      fetch(`${PULSAR_URL}/admin/v2/${path(t)}?force=true`, { method: 'DELETE' }).catch(() => undefined),
    ),
  );
}
