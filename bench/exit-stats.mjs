// Preloaded (`node --import`) into a process a benchmark runs whole, e.g. the `sluice` CLI: when
// the process exits it writes `{"cpuMs":…,"hwmKiB":…}` (CPU time of every thread, user + system,
// and VmHWM, the process's own peak RSS) to the file named by SLUICE_BENCH_STATS. Plain
// JavaScript, so preloading it costs no TypeScript stripping.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.SLUICE_BENCH_STATS;
if (file !== undefined && file !== '') {
  process.on('exit', () => {
    const cpu = process.cpuUsage();
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    const hwmKiB = m === null ? process.resourceUsage().maxRSS : Number(m[1]);
    writeFileSync(file, JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000, hwmKiB }));
  });
}
