/**
 * What the lookup stores' integration tests share: the CLI run without blocking the test process
 * (a proxy in it must keep serving), and a TCP proxy that takes a server away mid-run.
 */
import { spawn } from 'node:child_process';
import { createServer, Socket as NetSocket, type Server, type Socket } from 'node:net';

const BIN = new URL('../../../bin/sluice.js', import.meta.url).pathname;

/** Runs the CLI without blocking this process (the proxy lives here); stdout and stderr together. */
export function runCli(
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ code: number | null; text: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ...env } });
    let text = '';
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, text });
    });
  });
}

/**
 * A TCP proxy to `127.0.0.1:target` that goes away for good (closes its port and every
 * connection) once clients have sent `chunks` chunks of data: a server lost mid-run.
 */
export async function tcpProxy(target: number, chunks: number): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<Socket>();
  let seen = 0;
  let server: Server | undefined;
  const close = () => {
    server?.close();
    server = undefined;
    for (const s of sockets) s.destroy();
  };
  server = createServer((client) => {
    const upstream = new NetSocket();
    sockets.add(client);
    sockets.add(upstream);
    upstream.connect(target, '127.0.0.1');
    client.on('data', () => {
      if (++seen >= chunks) setImmediate(close);
    });
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  const s = server;
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const address = s.address();
  return { port: typeof address === 'object' && address !== null ? address.port : 0, close };
}
