/**
 * Memory and CPU of a process and all its descendants, read from /proc. The sampler sums VmRSS over the tree
 * every ~100 ms and keeps the peak; VmHWM is the kernel's own high-water mark of one process over its lifetime.
 */
import { readFileSync, readdirSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100;

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: parse after its last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** Every process alive now whose environment has NAME=VALUE (readable for our own processes, or as root). */
export function processesWithEnv(name: string, value: string): number[] {
  const wanted = `${name}=${value}`;
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(wanted)) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** The pid itself and every descendant alive now. */
export function descendants(root: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!stat) continue;
    const siblings = byParent.get(stat.ppid);
    if (siblings) siblings.push(stat.pid);
    else byParent.set(stat.ppid, [stat.pid]);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    tree.push(pid);
    queue.push(...(byParent.get(pid) ?? []));
  }
  return tree;
}

/** VmRSS, VmHWM (KiB) of one process, or undefined when it is gone. */
export function memoryOf(pid: number): { rssKiB: number; hwmKiB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
  } catch {
    return undefined;
  }
}

/** A spawner's program on its command line: the Go spawner's binary, or the Node spawner's script. */
const SPAWNER_PROGRAM = /\/cutover-spawner-[0-9a-f]+ |commandRunner\.cjs/;

/** CPU seconds used so far by each of the worker's spawner processes (transport/spawner.ts), by pid. */
export function spawnerSeconds(worker: number): Map<number, number> {
  const spawners = descendants(worker).filter((pid) => SPAWNER_PROGRAM.test(cmdline(pid)));
  return new Map(spawners.map((pid) => [pid, cpuSeconds(pid) ?? 0]));
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/** CPU seconds (user + system) the process itself has used so far. */
export function cpuSeconds(pid: number): number | undefined {
  const stat = readStat(pid);
  return stat ? stat.cpuTicks / CLOCK_TICKS_PER_SECOND : undefined;
}

export interface TreeMemory {
  /** Largest sum of VmRSS over the process and its descendants seen in one sample. */
  peakTreeRssKiB: number;
  /** Largest VmRSS of the root process alone seen in a sample. */
  peakRootRssKiB: number;
  /** VmRSS of the root when sampling started. */
  startRootRssKiB: number;
  /** Most processes in the tree at once (the root included). */
  peakProcesses: number;
  samples: number;
}

export class TreeSampler {
  private timer: NodeJS.Timeout | undefined;
  private result: TreeMemory = { peakTreeRssKiB: 0, peakRootRssKiB: 0, startRootRssKiB: 0, peakProcesses: 0, samples: 0 };

  constructor(
    private readonly root: number,
    private readonly intervalMs = 100,
  ) {}

  start(): this {
    this.result.startRootRssKiB = memoryOf(this.root)?.rssKiB ?? 0;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  private sample(): void {
    const tree = descendants(this.root);
    let sum = 0;
    let counted = 0;
    for (const pid of tree) {
      const memory = memoryOf(pid);
      if (!memory) continue;
      sum += memory.rssKiB;
      counted++;
      if (pid === this.root) this.result.peakRootRssKiB = Math.max(this.result.peakRootRssKiB, memory.rssKiB);
    }
    if (counted === 0) return;
    this.result.samples++;
    this.result.peakTreeRssKiB = Math.max(this.result.peakTreeRssKiB, sum);
    this.result.peakProcesses = Math.max(this.result.peakProcesses, counted);
  }

  stop(): TreeMemory {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    return { ...this.result };
  }
}
