/**
 * CPU time of one process tree: the process, every descendant alive now (found through
 * /proc/<pid>/task/<tid>/children, recursively), and what its descendants that already exited
 * left in their parents' cutime/cstime. Differences of two readings are the tree's CPU in between
 * (a child that exits meanwhile moves from its own counters to its parent's).
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ is 100 on Linux

function statFields(pid: number): string[] | null {
  try {
    // The command name may hold spaces and parentheses: split after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (c) out.push(Number(c));
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return out;
}

/** Every pid of the tree rooted at `root` (the root first). */
export function treePids(root: number): number[] {
  const seen = new Set<number>();
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    queue.push(...childrenOf(pid));
  }
  return [...seen];
}

/** CPU ms used so far by the tree rooted at `root` (0 when `root` is 0). */
export function treeCpuMs(root: number): number {
  if (!root) return 0;
  let ticks = 0;
  for (const pid of treePids(root)) {
    const f = statFields(pid);
    if (!f) continue;
    // fields after the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks * TICK_MS;
}

/** The postmaster's pid of the PostgreSQL whose data directory is `dataDir` (first line of postmaster.pid). */
export function postmasterPid(dataDir: string): number {
  try {
    return Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]) || 0;
  } catch {
    return 0;
  }
}
