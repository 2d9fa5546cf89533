/**
 * A process's own peak resident set size, for the benchmarks' memory columns.
 *
 * Why not `process.resourceUsage().maxRSS`: on Linux, `ru_maxrss` survives `execve`, and a
 * child that Node spawns starts as a copy of its parent, so a child's `maxRSS` is at least its
 * parent's RSS at spawn time (measured: an empty `node -e 0` spawned by a parent holding
 * 200 MB reports 195 MiB, while its own high-water mark is 45 MiB). `VmHWM` in
 * `/proc/self/status` is the high-water mark of the process's own address space, so it is read
 * first; other systems fall back to `maxRSS`.
 */
import { readFileSync } from 'node:fs';

/** Peak RSS of this process in KiB (Linux: `VmHWM`; elsewhere `resourceUsage().maxRSS`). */
export function peakRssKiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m !== null) return Number(m[1]);
  } catch {
    // Not Linux: no /proc.
  }
  return process.resourceUsage().maxRSS;
}
