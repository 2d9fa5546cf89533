/** Redis from Debian's `redis-server`, on 127.0.0.1:6379, no persistence (tests only). */
import { aptInstall, hasCommand, portOpen, type ServiceDef, sh, waitUntil } from './service.ts';

const PORT = Number(process.env.SLUICE_REDIS_PORT ?? 6379);

/** The Redis service. */
export const redis: ServiceDef = {
  name: 'redis',
  summary: `Redis (Debian redis-server) on 127.0.0.1:${PORT}`,
  async install() {
    if (!hasCommand('redis-server')) aptInstall('redis-server');
  },
  async start() {
    if (await portOpen(PORT)) return;
    sh('redis-server', [
      '--daemonize',
      'yes',
      '--bind',
      '127.0.0.1',
      '--port',
      String(PORT),
      '--save',
      '',
      '--appendonly',
      'no',
    ]);
    await waitUntil('redis', () => portOpen(PORT), 30_000);
  },
  async stop() {
    if (!(await portOpen(PORT))) return;
    sh('redis-cli', ['-p', String(PORT), 'shutdown', 'nosave'], { quiet: true });
    await waitUntil('redis shutdown', async () => !(await portOpen(PORT)), 15_000);
  },
  isUp: () => portOpen(PORT),
  address: () => `redis://127.0.0.1:${PORT}`,
};
