/**
 * The HTTP side of a run (`sluice run --http ADDRESS`, `http: { address }`): `/metrics`
 * (Prometheus text, `src/metrics/prometheus.ts`), `/health`, `/ready`, and the dashboard — a
 * static page (`dashboard/`) fed by `/api/topology`, `/api/state` and the server-sent events of
 * `/events` (one state a second). Everything is read from the run handle when asked; the run
 * itself does no work for it.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, SluiceError } from '../core/errors.ts';
import type { RunHandle } from '../core/run.ts';
import { cachedLag } from '../metrics/lag-cache.ts';
import { prometheusRegistry } from '../metrics/prometheus.ts';

/** The parts of a {@link RunHandle} the server reads. */
export type ObservedRun = Pick<RunHandle, 'metrics' | 'lag' | 'topology' | 'deadLetterSample'>;

/** Options of {@link serveRun}. */
export interface ServeOptions {
  /** `host:port` to listen on; port 0 picks a free one (see {@link RunServer.url}). */
  readonly address: string;
  /** Time between two states sent on `/events`, ms. Default 1000. */
  readonly intervalMs?: number;
}

/** A listening server; see {@link serveRun}. */
export interface RunServer {
  /** `http://host:port/`, with the port actually bound. */
  readonly url: string;
  /** Stops listening and ends every open event stream. */
  close(): Promise<void>;
}

/** `host:port` split; throws a `SLUICE_CONFIG` error saying what is wrong. */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  if (m === null || port > 65535) {
    throw new SluiceError(
      ErrorCode.CONFIG,
      `bad HTTP address \`${address}\`: use \`host:port\` with a port 0–65535, e.g. \`127.0.0.1:9464\``,
      { address },
    );
  }
  const host = (m[1] as string).replace(/^\[|\]$/g, '');
  return { host, port };
}

const ASSETS: Readonly<Record<string, string>> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/dashboard.js': 'dashboard.js',
  '/dashboard.css': 'dashboard.css',
};
const TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** The dashboard's files, shipped beside this module (`dashboard/`, copied into `dist/` by the build). */
function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const dir = new URL('./dashboard/', import.meta.url);
  const out = new Map<string, { body: Buffer; type: string }>();
  for (const [path, file] of Object.entries(ASSETS)) {
    const ext = file.slice(file.lastIndexOf('.') + 1);
    out.set(path, { body: readFileSync(new URL(file, dir)), type: TYPES[ext] ?? 'application/octet-stream' });
  }
  return out;
}

/**
 * Serves the run's metrics, health and dashboard on `options.address` until `close()`.
 * Rejects when the address cannot be bound (in use, not local).
 *
 * @example
 * const handle = pipeline.run();
 * const server = await serveRun(handle, { address: '127.0.0.1:9464' });
 * await handle.done.finally(() => server.close());
 */
export async function serveRun(handle: ObservedRun, options: ServeOptions): Promise<RunServer> {
  const { host, port } = parseAddress(options.address);
  const exporter = await prometheusRegistry(handle);
  const lag = cachedLag(() => handle.lag());
  const assets = loadAssets();
  const streams = new Set<ServerResponse>();
  const state = async () => ({
    time: Date.now(),
    snapshot: handle.metrics(),
    lag: await lag(),
    deadLetters: handle.deadLetterSample(),
  });

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/metrics': {
        const text = await exporter.scrape();
        res.writeHead(200, { 'content-type': exporter.contentType }).end(text);
        return;
      }
      case '/health':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/ready': {
        const s = handle.metrics().state;
        res.writeHead(s === 'running' ? 200 : 503, { 'content-type': 'text/plain' }).end(`${s}\n`);
        return;
      }
      case '/api/topology':
        json(res, handle.topology());
        return;
      case '/api/state':
        json(res, await state());
        return;
      case '/events':
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
        });
        res.write(`event: topology\ndata: ${JSON.stringify(handle.topology())}\n\n`);
        res.write(`data: ${JSON.stringify(await state())}\n\n`);
        streams.add(res);
        req.on('close', () => streams.delete(res));
        return;
    }
    const asset = assets.get(path);
    if (asset === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`Not found: ${path}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' }).end(asset.body);
  };

  const server: Server = createServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });
  const timer = setInterval(() => {
    if (streams.size === 0) return;
    state()
      .then((s) => {
        const line = `data: ${JSON.stringify(s)}\n\n`;
        for (const res of streams) res.write(line);
      })
      .catch(() => {});
  }, options.intervalMs ?? 1000);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new SluiceError(
          ErrorCode.CONFIG,
          `cannot serve metrics on \`${options.address}\`: ${err.code === 'EADDRINUSE' ? 'the port is in use; pick another or use port 0' : err.message}`,
          { address: options.address },
          { cause: err },
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${shownHost}:${bound.port}/`,
    close: async () => {
      clearInterval(timer);
      for (const res of streams) res.end();
      streams.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function json(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}
