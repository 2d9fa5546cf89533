/**
 * Where the `pulsar` source and sink connect: the broker's web service (`http://host:8080`), whose
 * WebSocket API (`/ws/v2/consumer/…`, `/ws/v2/producer/…`, `/ws/v3/consumer/…` for several topics
 * or a pattern) they speak through Node's built-in `WebSocket`, and whose admin REST API creates
 * partitioned topics. Topic names are normalised here (`events` → `persistent://public/default/events`),
 * sockets are opened with the one retry policy, and no message ever shows a token or a password.
 */
import { cancelledError, ErrorCode, errorMessage, SluiceError } from '../../core/errors.ts';
import { retrying } from '../../core/retry.ts';
import type { StageContext } from '../../core/stage.ts';
import { redactUrl } from '../../core/url.ts';

/** A topic's full name, split: `persistent://tenant/namespace/local`. */
export interface TopicName {
  readonly domain: 'persistent' | 'non-persistent';
  readonly tenant: string;
  readonly namespace: string;
  readonly local: string;
  /** `persistent://tenant/namespace/local`. */
  readonly full: string;
}

/**
 * The full name of `topic`: `events` (in `public/default`), `tenant/ns/events`, or a full
 * `persistent://tenant/ns/events` / `non-persistent://…`. Throws a config error on anything else.
 *
 * @example
 * topicName('events').full; // 'persistent://public/default/events'
 */
export function topicName(topic: string): TopicName {
  const m = /^(persistent|non-persistent):\/\/([^/]+)\/([^/]+)\/(.+)$/.exec(topic);
  let domain: TopicName['domain'] = 'persistent';
  let parts: string[];
  if (m !== null) {
    domain = m[1] as TopicName['domain'];
    parts = [m[2] as string, m[3] as string, m[4] as string];
  } else if (topic.includes('://')) {
    parts = [];
  } else {
    const split = topic.split('/');
    parts = split.length === 1 ? ['public', 'default', topic] : split;
  }
  if (parts.length !== 3 || parts.some((p) => p === '')) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `\`${topic}\` is not a Pulsar topic name; write \`name\` (in \`public/default\`), \`tenant/namespace/name\` or \`persistent://tenant/namespace/name\``,
      { topic },
    );
  }
  const [tenant, namespace, local] = parts as [string, string, string];
  return { domain, tenant, namespace, local, full: `${domain}://${tenant}/${namespace}/${local}` };
}

/** The web service of one broker (or proxy), and how to authenticate to it. */
export interface PulsarEndpoint {
  /** `http(s)://host:port` as configured (may hold a password: never shown). */
  readonly url: string;
  /** An authentication token sent as `Authorization: Bearer …`; never shown. */
  readonly token?: string | undefined;
}

/** The endpoint for messages: its URL without any password. */
export function where(endpoint: PulsarEndpoint): string {
  return redactUrl(endpoint.url);
}

/** `http(s)://host:port` without a trailing slash or path. */
function base(endpoint: PulsarEndpoint): URL {
  const u = new URL(endpoint.url);
  u.username = '';
  u.password = '';
  u.pathname = '/';
  u.search = '';
  return u;
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

/** The WebSocket URL of a path under the endpoint with `params` (undefined values left out). */
function wsUrl(
  endpoint: PulsarEndpoint,
  path: string,
  params: Record<string, string | number | boolean | undefined>,
): string {
  const u = base(endpoint);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = path;
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, String(v));
  return u.toString();
}

/** The consumer socket URL for one topic (`/ws/v2/consumer/…`). */
export function consumerUrl(
  endpoint: PulsarEndpoint,
  topic: TopicName,
  subscription: string,
  params: Record<string, string | number | boolean | undefined>,
): string {
  const path = `/ws/v2/consumer/${topic.domain}/${enc(topic.tenant)}/${enc(topic.namespace)}/${enc(topic.local)}/${enc(subscription)}`;
  return wsUrl(endpoint, path, params);
}

/** The consumer socket URL for several topics or a pattern (`/ws/v3/consumer/<sub>?topics=…|topicsPattern=…`). */
export function multiConsumerUrl(
  endpoint: PulsarEndpoint,
  subscription: string,
  which: { topics: readonly TopicName[] } | { pattern: string },
  params: Record<string, string | number | boolean | undefined>,
): string {
  const sel =
    'topics' in which
      ? { topics: which.topics.map((t) => t.full).join(',') }
      : { topicsPattern: which.pattern };
  return wsUrl(endpoint, `/ws/v3/consumer/${enc(subscription)}`, { ...sel, ...params });
}

/** The producer socket URL (`/ws/v2/producer/…`). */
export function producerUrl(
  endpoint: PulsarEndpoint,
  topic: TopicName,
  params: Record<string, string | number | boolean | undefined>,
): string {
  const path = `/ws/v2/producer/${topic.domain}/${enc(topic.tenant)}/${enc(topic.namespace)}/${enc(topic.local)}`;
  return wsUrl(endpoint, path, params);
}

/** Headers for the endpoint's requests (the token, when there is one). */
function headers(endpoint: PulsarEndpoint): Record<string, string> {
  return endpoint.token === undefined ? {} : { Authorization: `Bearer ${endpoint.token}` };
}

/** True when the web service answers HTTP at all (to tell "unreachable" from "refused the socket"). */
async function reachable(endpoint: PulsarEndpoint): Promise<boolean> {
  try {
    await fetch(new URL('/admin/v2/clusters', base(endpoint)), {
      headers: headers(endpoint),
      signal: AbortSignal.timeout(3000),
    });
    return true;
  } catch {
    return false;
  }
}

/** A path and query for messages: the URL without scheme and host (never holds the token). */
function shown(url: string): string {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
}

/** The shape of an undici dispatcher, as far as a WebSocket handshake uses it. */
interface Dispatcher {
  dispatch(opts: { headers?: unknown; upgrade?: unknown }, handler: unknown): boolean;
  readonly webSocketOptions?: unknown;
}

/** The process's global undici dispatcher (read at each use: it may be replaced). */
function globalDispatcher(): Dispatcher | undefined {
  const d = (globalThis as Record<symbol, unknown>)[Symbol.for('undici.globalDispatcher.1')] as
    | Dispatcher
    | undefined;
  return typeof d?.dispatch === 'function' ? d : undefined;
}

/**
 * A dispatcher for the WebSocket handshake that leaves out the `permessage-deflate` offer, so the
 * broker sends every frame uncompressed: Node's WebSocket (undici) always offers it, the broker's
 * Jetty accepts, and undici then inflates each frame on the thread pool and reads nothing more of
 * the socket until that is done — one pool round trip per delivery and per receipt, for frames of
 * a few hundred bytes that compression barely shrinks (it costs the broker CPU too). The request
 * itself goes to the process's global dispatcher, looked up where undici keeps it when the
 * handshake is sent (a proxy agent set there keeps working). Used only when that global is
 * found; if the handshake's headers have another shape, they go unchanged. Either way the
 * socket is then compressed as before, never refused.
 */
const plainDispatcher: Dispatcher = {
  get webSocketOptions() {
    return globalDispatcher()?.webSocketOptions;
  },
  dispatch(opts, handler) {
    const global = globalDispatcher() as Dispatcher;
    const h = opts.headers;
    if (opts.upgrade === 'websocket' && h !== null && typeof h === 'object' && !Array.isArray(h)) {
      const { 'sec-websocket-extensions': _offer, ...rest } = h as Record<string, unknown>;
      return global.dispatch({ ...opts, headers: rest }, handler);
    }
    return global.dispatch(opts, handler);
  },
};

/**
 * Opens one WebSocket to `url` and resolves once it is open. A broker that cannot be reached is
 * waited for with the one retry policy (one warning per attempt), up to `connectTimeout` ms when
 * given; a broker that answers but refuses the socket (an unknown namespace, a subscription of
 * another type, a second consumer on an `exclusive` subscription, a bad token) fails at once
 * with what to check. `signal` cancels.
 */
export async function openSocket(
  endpoint: PulsarEndpoint,
  url: string,
  opts: {
    ctx: StageContext;
    signal: AbortSignal;
    /** Gerund phrase: ``consuming `persistent://public/default/x` as `sub` ``. */
    what: string;
    connectTimeout?: number | undefined;
  },
): Promise<WebSocket> {
  const { ctx, signal } = opts;
  return retrying(
    async () => {
      const ws = await new Promise<WebSocket>((resolve, reject) => {
        // Node's WebSocket (undici) takes headers and a dispatcher as non-standard init options.
        // `WebSocket` is read first: that loads undici, which sets the global dispatcher. Where
        // undici keeps it elsewhere, the socket opens as Node opens it (compressed).
        const Socket = WebSocket;
        const dispatcher = globalDispatcher() === undefined ? undefined : plainDispatcher;
        const init = { headers: headers(endpoint), dispatcher } as unknown as string[];
        const socket = new Socket(url, init);
        socket.binaryType = 'arraybuffer';
        const onAbort = (): void => {
          socket.close();
          reject(cancelledError(signal.reason));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        socket.addEventListener(
          'open',
          () => {
            signal.removeEventListener('abort', onAbort);
            resolve(socket);
          },
          { once: true },
        );
        socket.addEventListener(
          'close',
          (ev) => {
            signal.removeEventListener('abort', onAbort);
            reject(
              Object.assign(new Error(`closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`), {
                code: ev.code,
              }),
            );
          },
          { once: true },
        );
      });
      return ws;
    },
    {
      what: `${opts.what} on Pulsar \`${where(endpoint)}\``,
      clock: ctx.clock,
      signal,
      log: ctx.log,
      logFields: { stage: ctx.name },
      timeoutMs: opts.connectTimeout,
      setting: 'connectTimeout',
      hint: 'start the broker or fix `url`',
      retryable: () => true,
      onFailure: async (err) => {
        // An answering broker that refuses the upgrade will refuse again: fail at once.
        if (await reachable(endpoint)) {
          throw new SluiceError(
            ErrorCode.STAGE,
            `${opts.what}: Pulsar \`${where(endpoint)}\` refused the WebSocket \`${shown(url)}\` (${errorMessage(err)}); check that the namespace exists, that the subscription is not held by a consumer of another type or, for \`exclusive\`, by another consumer, that \`token\` is valid, and the broker's log`,
            { stage: ctx.name, component: 'pulsar' },
            { cause: err },
          );
        }
      },
      giveUp: (err, attempts, spent) =>
        new SluiceError(
          ErrorCode.STAGE,
          `${opts.what}: Pulsar \`${where(endpoint)}\` did not answer in ${Math.round(spent / 1000)} s (${attempts} attempts: ${errorMessage(err)}); start the broker, fix \`url\` or raise \`connectTimeout\``,
          { stage: ctx.name, component: 'pulsar' },
          { cause: err },
        ),
    },
  );
}

/**
 * Makes `topic` a partitioned topic of `partitions` partitions when it does not exist (admin
 * API); an existing topic is left as it is. Throws with the broker's answer otherwise.
 */
export async function ensurePartitioned(
  endpoint: PulsarEndpoint,
  topic: TopicName,
  partitions: number,
  signal: AbortSignal,
): Promise<void> {
  const path = `/admin/v2/${topic.domain}/${enc(topic.tenant)}/${enc(topic.namespace)}/${enc(topic.local)}/partitions`;
  const res = await fetch(new URL(path, base(endpoint)), {
    method: 'PUT',
    headers: { ...headers(endpoint), 'Content-Type': 'application/json' },
    body: String(partitions),
    signal,
  });
  if (res.ok || res.status === 409) return;
  const text = (await res.text()).slice(0, 300);
  throw new SluiceError(
    ErrorCode.STAGE,
    `creating partitioned topic \`${topic.full}\` (${partitions} partitions) on Pulsar \`${where(endpoint)}\` failed: HTTP ${res.status} ${text}; check the namespace and the token's permissions`,
    { component: 'pulsar', topic: topic.full },
  );
}
