/** The machine and software versions, printed as the output's header so results can be pasted with their context. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg, release } from 'node:os';
import { PROJECT_ROOT } from '../projectRoot';

export interface Machine {
  date: string;
  nproc: string;
  cpu: string;
  memory: string;
  kernel: string;
  node: string;
  temporal: string;
  ansible: string;
  commit: string;
  loadAverage: string;
}

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: PROJECT_ROOT });
  return result.status === 0 ? result.stdout.trim() : '';
}

export function describeMachine(temporalBinary: string, ansible: string | undefined): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  const dirty = run('git', ['status', '--porcelain']) ? ' (with uncommitted changes)' : '';
  return {
    date: new Date().toISOString(),
    nproc: run('nproc', []),
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? '?',
    memory: `${(memKiB / 1024 / 1024).toFixed(1)} GiB`,
    kernel: release(),
    node: process.version,
    temporal: run(temporalBinary, ['--version']).replace(/^temporal version /, '') || '?',
    ansible: ansible ?? 'not used',
    commit: `${run('git', ['rev-parse', '--abbrev-ref', 'HEAD'])} ${run('git', ['rev-parse', '--short', 'HEAD'])}${dirty}`,
    loadAverage: loadavg()
      .map((n) => n.toFixed(2))
      .join(' '),
  };
}

export function formatMachine(machine: Machine, command: string): string {
  return [
    `command: ${command}`,
    `date: ${machine.date}; code: ${machine.commit}`,
    `machine: nproc ${machine.nproc} (${machine.cpu}), memory ${machine.memory}, Linux ${machine.kernel}, load average at start ${machine.loadAverage}`,
    `software: node ${machine.node}; temporal CLI ${machine.temporal}; ${machine.ansible}`,
  ].join('\n');
}
