/**
 * A stand-in risk-scoring service for the scoring example: `POST /score` with a record answers
 * `{"score": n}` after 5–25 ms, as a remote model would. `node examples/scoring/scorer.ts [port]`
 * serves on 127.0.0.1 (default port 8089) until stopped.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts the scorer on `port` (0: any free port) and resolves to the server and its port. */
export async function startScorer(port = 8089): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      const r = JSON.parse(body) as { id: number; risk: number };
      const score = Math.min(100, r.risk + ((r.id * 37) % 11));
      setTimeout(
        () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(score));
        },
        5 + ((r.id * 7919) % 21),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

if (import.meta.main) {
  const { port } = await startScorer(Number(process.argv[2] ?? 8089));
  console.log(`Scoring on http://127.0.0.1:${port}/score`);
}
