/**
 * Restart tests of the connector conformance suite: a `sluice run` child (the real CLI) is running
 * when the server it depends on — a Kafka broker, the PostgreSQL or Redis checkpoint store — goes
 * away and comes back. The server is always a PRIVATE one (own folder and ports: `privateKafkaBroker`
 * in scripts/services/kafka.ts, `startPrivatePostgres` and {@link privateRedis} in test/support),
 * never the shared one other engineers' tests use at the same time.
 *
 * What every such test asserts (the behaviour the connectors promise):
 * - while the server is down, the run says so on stderr in a line naming the server and saying it
 *   retries (and, for the checkpoint store, that it is back), never with a stack trace;
 * - once it is back the run goes on and ends by itself (exit 0), with nothing lost — and nothing
 *   twice where the path is exactly-once;
 * - an outage longer than the configured bound fails the run with one clear line, and the next
 *   run resumes exactly from the last stored checkpoint.
 */
import assert from 'node:assert/strict';
import { type Run, startRun, until } from './conformance.ts';

/** A server that can be taken away and brought back. */
export interface Outage {
  /** Names it in assertion messages: `the private Kafka broker`. */
  readonly what: string;
  /** Takes it away (a crash or a stop); resolves once it is gone. */
  down(): Promise<void>;
  /** Brings it back on the same port and data; resolves once it answers. */
  up(): Promise<void>;
}

/** Options of {@link runThroughOutage}. */
export interface OutageRunOptions {
  /** How far the run got (records written, read…); the outage begins once it reaches `at`. */
  readonly progress: () => number | Promise<number>;
  readonly at: number;
  readonly outage: Outage;
  /** How long the server stays away, ms. */
  readonly downMs: number;
}

/** What {@link runThroughOutage} saw. */
export interface OutageRun {
  readonly run: Run;
  /** `progress()` when the server went away. */
  readonly atDown: number;
  /** `progress()` when it was back. */
  readonly atUp: number;
  /** How the run ended. */
  readonly end: { code: number | null; signal: NodeJS.Signals | null };
}

/**
 * Starts `sluice run pipeline.yaml` in `dir`, takes `outage` away once `progress` reaches `at`,
 * brings it back after `downMs`, and waits for the run to end (it is not asserted here how).
 *
 * @example
 * const r = await runThroughOutage(dir, { progress: () => count(), at: 500, outage, downMs: 3000 });
 * assert.equal(r.end.code, 0, r.run.stderr());
 */
export async function runThroughOutage(dir: string, o: OutageRunOptions): Promise<OutageRun> {
  const run = startRun(dir);
  try {
    await until(
      `${o.at} records before ${o.outage.what} goes away`,
      async () => (await o.progress()) >= o.at,
      {
        run,
      },
    );
    await o.outage.down();
    const atDown = await o.progress();
    await new Promise((r) => setTimeout(r, o.downMs));
    await o.outage.up();
    const atUp = await o.progress();
    const end = await run.exited;
    return { run, atDown, atUp, end };
  } catch (err) {
    run.child.kill('SIGKILL');
    await run.exited;
    throw err;
  }
}

/** Asserts the lines of `stderr` matching `pattern` exist, are single lines and hold no stack trace. */
export function assertStatusLine(stderr: string, pattern: RegExp, what: string): string {
  const line = stderr.split('\n').find((l) => pattern.test(l));
  assert.ok(line !== undefined, `${what}: no line matches ${pattern}; stderr:\n${stderr}`);
  assert.doesNotMatch(stderr, /^\s+at .+\(.+:\d+:\d+\)$/m, `${what}: a stack trace was printed:\n${stderr}`);
  return line;
}
