/**
 * A local HTTP service for the saga tests that fails on purpose, by the prefix of a call's
 * `Idempotency-Key` (the saga id): `flaky-*` gets two 503s per call, the first `/charge` of a
 * `slow-*` saga is never answered (the step times out), the first `/charge` of a `drop-*` saga has
 * its connection dropped (a service dying mid-request), and `/charge` of a `bad-*` saga is refused
 * with a 402. Anything else succeeds and is applied once per idempotency key.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The running service. */
export interface FailingService {
  /** `http://127.0.0.1:<port>`. */
  readonly base: string;
  /** Idempotency keys applied (each once, whatever the retries). */
  readonly applied: Set<string>;
  /** Idempotency key → requests received. */
  readonly requests: Map<string, number>;
  close(): void;
}

/** Starts the service on a free loopback port; each answer waits `delayMs` (default 0). */
export async function failingService(delayMs = 0): Promise<FailingService> {
  const applied = new Set<string>();
  const requests = new Map<string, number>();
  const server = createServer((req, res) => {
    const key = String(req.headers['idempotency-key']);
    const n = (requests.get(key) ?? 0) + 1;
    requests.set(key, n);
    req.resume();
    const answer = () => {
      const charge = req.url === '/charge';
      if (key.startsWith('flaky-') && n <= 2) return void res.writeHead(503).end('busy');
      if (key.startsWith('slow-') && charge && n === 1) return; // never answers: the step times out
      if (key.startsWith('drop-') && charge && n === 1) return void req.socket.destroy();
      if (key.startsWith('bad-') && charge) return void res.writeHead(402).end('no funds');
      applied.add(key);
      res.writeHead(200).end('ok');
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    applied,
    requests,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}
