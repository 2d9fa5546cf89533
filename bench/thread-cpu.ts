/**
 * CPU time per thread of a running child process, read from Linux's `/proc/PID/task/TID/stat`
 * every few milliseconds until it exits: how a parallel run's work splits between its main
 * thread, its worker threads and V8's own helper threads, figures that hardly move with the
 * machine's load (unlike wall times).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** CPU milliseconds (user + system) of each kind of thread, at the last look before exit. */
export interface ThreadCpu {
  /** Node's main thread (`MainThread`). */
  readonly main: number;
  /** Each worker thread (`WorkerThread`), in the order they were seen. */
  readonly workers: readonly number[];
  /** Everything else: V8's compiler and GC helpers, libuv's pool. */
  readonly helpers: number;
}

/** What {@link runWithThreadCpu} returns. */
export interface TimedRun {
  readonly wallSeconds: number;
  readonly status: number | null;
  readonly stderr: string;
  /** Undefined where `/proc` cannot be read (not Linux). */
  readonly threads: ThreadCpu | undefined;
}

const TICK_MS = 1000 / 100; // USER_HZ: `stat` counts in 1/100 s on Linux

/** The thread's name and user + system CPU ms, or undefined once it is gone. */
function readThread(pid: number, tid: string): { name: string; ms: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // `pid (comm) state …`: comm may hold spaces, so split after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
    return { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), ms };
  } catch {
    return undefined;
  }
}

/** The pid of `pid`'s first child (the `node` that `/usr/bin/time` starts), if any yet. */
function firstChild(pid: number): number | undefined {
  try {
    const c = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0];
    return c ? Number(c) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `command` and, every `everyMs`, the CPU time of each thread of the process it starts —
 * or, with `throughChild` (e.g. `command` is `/usr/bin/time`), of that process's first child.
 *
 * @example
 * const r = await runWithThreadCpu('/usr/bin/time', ['-f', '%U', 'node', 'x.js'], { throughChild: true });
 * console.log(r.threads?.main, r.threads?.workers);
 */
export function runWithThreadCpu(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; throughChild?: boolean; everyMs?: number } = {},
): Promise<TimedRun> {
  const t0 = performance.now();
  const child = spawn(command, args, { env: options.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr += d;
  });
  const seen = new Map<string, { name: string; ms: number }>();
  let readable = true;
  const look = () => {
    const pid = options.throughChild ? firstChild(child.pid as number) : child.pid;
    if (pid === undefined) return;
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      readable = seen.size > 0;
      return;
    }
    for (const tid of tids) {
      const t = readThread(pid, tid);
      if (t !== undefined) seen.set(tid, t);
    }
  };
  const timer = setInterval(look, options.everyMs ?? 5);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => {
      clearInterval(timer);
      let main = 0;
      let helpers = 0;
      const workers: number[] = [];
      for (const t of seen.values())
        if (t.name === 'MainThread') main = t.ms;
        else if (t.name === 'WorkerThread') workers.push(t.ms);
        else helpers += t.ms;
      resolve({
        wallSeconds: (performance.now() - t0) / 1000,
        status,
        stderr,
        threads: readable && seen.size > 0 ? { main, workers, helpers } : undefined,
      });
    });
  });
}
