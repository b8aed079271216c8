/**
 * `npm run bench`: Cutover's upgradeFleet, an Ansible rolling upgrade and the bare floor (xargs -P), side by side
 * in one invocation, per host count; or, with --kill, a worker killed with SIGKILL in the middle of a batch.
 * See docs/benchmarks.md.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ensureTemporal } from '../stack/temporalBinary';
import { ansibleVersion, ensureAnsible } from './ansible';
import { cleanupAll, installSignalHandlers, interrupted, keepTempDirs, keptDirs, removeTempDir, tempDir } from './cleanup';
import { type Leg, compareAt } from './compare';
import { CONTENDER_COMMAND, startContenders } from './contend';
import { formatCliBench, runCliBench } from './cli';
import { runKill } from './kill';
import { describeMachine, formatMachine } from './machine';
import { FOOTNOTES, formatHostCount, formatKill, type HostCountResult } from './report';

const LEGS: Leg[] = ['cutover', 'cutover-encrypted', 'spawn-in-worker', 'ansible', 'floor', 'spawners', 'spawners-node'];
const ANSIBLE_MAX_HOSTS = 10_000;

const positiveInt = (name: string) => (text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a whole number of at least 1, got "${text}"`);
  return n;
};
const nonNegativeInt = (name: string) => (text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number of at least 0, got "${text}"`);
  return n;
};
const hostList = (text: string) =>
  text.split(',').map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n < 2) throw new InvalidArgumentError(`--hosts takes host counts of at least 2 separated by commas, got "${text}"`);
    return n;
  });
const legList = (text: string) =>
  text.split(',').map((part) => {
    const leg = part.trim() as Leg;
    if (!LEGS.includes(leg)) throw new InvalidArgumentError(`--only takes ${LEGS.join(', ')} separated by commas, got "${part}"`);
    return leg;
  });

interface Options {
  hosts: number[];
  parallel: number;
  steps: 'noop' | 'lab';
  only: Leg[];
  batchSize?: number;
  kill?: boolean;
  killHosts: number;
  killDelay: number;
  signal: 'KILL' | 'TERM';
  standby?: boolean;
  contend: number;
  out?: string;
  keep?: boolean;
  cpuProf?: string;
  cli?: boolean;
  cliRuns: number;
  base?: string;
}

const log = (line: string) => console.error(`bench: ${line}`);

async function main(argv: string[]): Promise<void> {
  const program = new Command('npm run bench --')
    .description('Cutover vs Ansible vs the bare floor (xargs -P), side by side; see docs/benchmarks.md')
    .option('--hosts <list>', 'host counts, comma-separated (Ansible is skipped at 10000)', hostList, [100, 1000, 10000])
    .option('--parallel <n>', 'hosts running a step at once: maxParallel, Ansible forks, xargs -P', positiveInt('--parallel'), 10)
    .addOption(new Option('--steps <kind>', 'noop: every command `true` (version: echo SOURCE); lab: the lab plan\'s labhost commands').choices(['noop', 'lab']).default('noop'))
    .option('--only <legs>', `which of ${LEGS.join(',')} to run (spawn-in-worker: Cutover again, spawning from the worker process; skipped at 10000)`, legList, LEGS)
    .option('--batch-size <n>', "hosts per batch activity (default: the plan's default); also Ansible's serial", positiveInt('--batch-size'))
    .option('--kill', 'run the kill -9 scenario instead of the comparison')
    .option('--kill-hosts <n>', 'hosts in the kill scenario', positiveInt('--kill-hosts'), 200)
    .option('--kill-delay <seconds>', "the lab's delay fault on every non-owner install in the kill scenario", positiveInt('--kill-delay'), 1)
    .addOption(new Option('--signal <name>', 'how the kill scenario stops the worker: KILL (a crash) or TERM (a graceful stop)').choices(['KILL', 'TERM']).default('KILL'))
    .option('--standby', 'kill scenario: the second worker polls before the first is signalled (two workers on the queue)')
    .option('--contend <n>', `run N CPU-bound processes (${CONTENDER_COMMAND}) for the whole invocation`, nonNegativeInt('--contend'), 0)
    .option('--cli', 'time the cutover commands and a worker start instead of the comparison (bench/cli.ts)')
    .option('--cli-runs <n>', 'timed runs of each command with --cli (the median is reported)', positiveInt('--cli-runs'), 10)
    .option('--base <dir>', "also run another checkout's bin/cutover.js (e.g. a worktree at main): with --cli its commands, else its worker right after the cutover leg")
    .option('--out <file>', 'also write the results as JSON')
    .option('--cpu-prof <dir>', "write V8 CPU profiles of the Cutover legs' worker (main and workflow threads) to DIR, for Chrome DevTools")
    .option('--keep', 'keep the temp dirs (lab, logs, dev server database, playbook, histories as JSON) for inspection')
    .parse(argv);
  const options = program.opts<Options>();
  if (options.base && !options.cli && !options.kill && !options.only.includes('cutover')) {
    program.error(`--base runs the other checkout's worker right after the cutover leg, and --only ${options.only.join(',')} has none: add cutover to --only`);
  }
  const command = `npm run bench${argv.length > 2 ? ` -- ${argv.slice(2).join(' ')}` : ''}`;
  keepTempDirs(Boolean(options.keep));
  installSignalHandlers();

  const binary = await ensureTemporal(log);
  const needsAnsible = !options.kill && !options.cli && options.only.includes('ansible') && options.hosts.some((n) => n < ANSIBLE_MAX_HOSTS);
  if (needsAnsible) ensureAnsible();
  const machine = describeMachine(binary, needsAnsible ? ansibleVersion() : undefined);
  const contending = options.contend > 0 ? `\ncontending: ${options.contend} CPU-bound process(es) (${CONTENDER_COMMAND}) throughout` : '';
  console.log(`## npm run bench\n\n\`\`\`\n${formatMachine(machine, command)}${contending}\n\`\`\`\n`);
  const stopContenders = startContenders(options.contend);

  const output: { command: string; machine: typeof machine; results: HostCountResult[]; kill?: unknown; cli?: unknown } = { command, machine, results: [] };
  const save = () => {
    if (options.out) writeFileSync(options.out, JSON.stringify(output, null, 2) + '\n');
  };
  try {
    if (options.cli) {
      const cli = await runCliBench({ binary, runs: options.cliRuns, ...(options.base ? { base: options.base } : {}) }, log);
      output.cli = cli;
      console.log(formatCliBench(cli) + '\n');
    } else if (options.kill) {
      const dir = tempDir('cutover-bench-kill-');
      try {
        const kill = await runKill(
          { binary, dir, hosts: options.killHosts, parallel: options.parallel, delaySeconds: options.killDelay, killAt: 0.3, signal: `SIG${options.signal}`, standby: Boolean(options.standby), ...(options.batchSize ? { batchSize: options.batchSize } : {}) },
          log,
        );
        output.kill = kill;
        console.log(formatKill(kill) + '\n');
      } finally {
        removeTempDir(dir);
      }
    } else {
      for (const hosts of options.hosts) {
        const result = await compareAt(
          { binary, hosts, parallel: options.parallel, steps: options.steps, only: options.only, ansibleMaxHosts: ANSIBLE_MAX_HOSTS, keep: Boolean(options.keep), ...(options.base ? { base: resolve(options.base) } : {}), ...(options.cpuProf ? { cpuProfileDir: resolve(options.cpuProf) } : {}), ...(options.batchSize ? { batchSize: options.batchSize } : {}) },
          log,
        );
        output.results.push(result);
        save();
        console.log(formatHostCount(result) + '\n');
      }
      console.log(FOOTNOTES);
    }
    save();
  } finally {
    await stopContenders();
    await cleanupAll();
    for (const dir of keptDirs()) log(`kept ${dir}`);
  }
}

main(process.argv).then(
  () => {
    if (!interrupted()) process.exit(0);
  },
  (error: unknown) => {
    if (interrupted()) return; // the signal handler is stopping everything and exits
    console.error(`bench: failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    void cleanupAll().finally(() => process.exit(1));
  },
);
