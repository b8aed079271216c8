/**
 * Ansible's side: a rolling-upgrade playbook running the run's exact commands in the workflow's order, with
 * Debian's ansible-core (installed by scripts/ensure-bench-deps.sh), `connection: local`, forks = parallelism,
 * `serial` = the plan's batch size for the remaining hosts, and no fact gathering.
 */
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { UpgradePlan } from '../core/plan';
import { PROJECT_ROOT } from '../projectRoot';
import { track } from './cleanup';
import { type Stage, commandsByHost } from './plan';

export function ensureAnsible(): void {
  const result = spawnSync('bash', [join(PROJECT_ROOT, 'scripts', 'ensure-bench-deps.sh')], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error('scripts/ensure-bench-deps.sh could not install ansible-core (see above)');
}

export function ansibleVersion(): string | undefined {
  const result = spawnSync('ansible-playbook', ['--version'], { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  const core = /\[core ([^\]]+)\]/.exec(result.stdout)?.[1];
  const python = /python version = (\S+)/.exec(result.stdout)?.[1];
  return `ansible-core ${core ?? '?'} (python ${python ?? '?'})`;
}

const shellTask = (name: string, command: string, extra: Record<string, unknown> = {}) => ({ name, 'ansible.builtin.shell': command, ...extra });

/**
 * The playbook mirrors the workflow's phases: every host's version (checked against the source), drain and stop;
 * the database checksum and backup; the DB owner's upgrade and start; the remaining hosts in `serial` waves
 * (upgrade, start); the database verify; every host's verify and online. Plays stop at the first failure.
 */
function playbook(plan: UpgradePlan, list: Stage[]): unknown[] {
  const dbTasks = (phase: string) =>
    list.filter((s) => s.phase === phase && s.step.startsWith('db ')).map((s) => shellTask(s.step, `{{ db_cmds['${s.step.slice(3)}'] }}`));
  const hostTask = (step: string) => shellTask(step, `{{ cmds['${step}'] }}`);
  const play = (name: string, hosts: string, tasks: unknown[], extra: Record<string, unknown> = {}) => ({
    name,
    hosts,
    gather_facts: false,
    any_errors_fatal: true,
    ...extra,
    tasks,
  });
  const version = shellTask('version', "{{ cmds['version'] }}", {
    register: 'version',
    changed_when: false,
    failed_when: `version.rc != 0 or (version.stdout_lines | last | default('')) != '${plan.source}'`,
  });
  return [
    play('preflight, drain, stop: every host', 'fleet', [version, hostTask('drain'), hostTask('stop')]),
    play('back up the shared database', 'owner', dbTasks('backup')),
    play('upgrade the DB owner (schema)', 'owner', [hostTask('upgrade'), hostTask('start')]),
    play('upgrade the remaining hosts in waves', 'rest', [hostTask('upgrade'), hostTask('start')], { serial: plan.execution.batchSize }),
    play('verify the database', 'owner', dbTasks('verify')),
    play('verify and bring online: every host', 'fleet', [hostTask('verify'), hostTask('online')]),
  ].filter((p) => p.tasks.length > 0);
}

function inventory(plan: UpgradePlan, list: Stage[]): unknown {
  const { hosts, database } = commandsByHost(list);
  const owner = plan.hosts.find((h) => h.roles.includes('db-owner'))?.id as string;
  const rest = plan.hosts.map((h) => h.id).filter((id) => id !== owner);
  return {
    all: {
      vars: { ansible_connection: 'local', ansible_python_interpreter: '{{ ansible_playbook_python }}' },
      children: {
        fleet: { hosts: Object.fromEntries(plan.hosts.map((h) => [h.id, { cmds: hosts[h.id] }])) },
        owner: { hosts: { [owner]: { db_cmds: database } } },
        rest: { hosts: Object.fromEntries(rest.map((id) => [id, {}])) },
      },
    },
  };
}

export interface AnsibleResult {
  wallMs: number;
  recap: string;
  log: string;
}

export async function runAnsible(plan: UpgradePlan, list: Stage[], parallel: number, env: NodeJS.ProcessEnv, dir: string): Promise<AnsibleResult> {
  mkdirSync(dir, { recursive: true });
  // JSON is YAML: ansible-playbook reads both files as YAML.
  writeFileSync(join(dir, 'inventory.yml'), JSON.stringify(inventory(plan, list)));
  writeFileSync(join(dir, 'playbook.yml'), JSON.stringify(playbook(plan, list), null, 1));
  writeFileSync(
    join(dir, 'ansible.cfg'),
    [
      '[defaults]',
      `forks = ${parallel}`,
      'gathering = explicit',
      'host_key_checking = False',
      'retry_files_enabled = False',
      `local_tmp = ${join(dir, 'tmp-local')}`,
      `remote_tmp = ${join(dir, 'tmp-remote')}`,
      '[connection]',
      // The module is piped to python instead of copied to a temp file per task: Ansible's usual speed-up.
      'pipelining = True',
      '',
    ].join('\n'),
  );
  const log = join(dir, 'ansible.log');
  const out = openSync(log, 'w');
  const started = performance.now();
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = track(
      spawn('ansible-playbook', ['-i', join(dir, 'inventory.yml'), '-f', String(parallel), join(dir, 'playbook.yml')], {
        cwd: dir,
        env: { ...env, ANSIBLE_CONFIG: join(dir, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1', ANSIBLE_HOME: join(dir, 'home') },
        stdio: ['ignore', out, out],
        detached: true,
      }),
      { group: true },
    );
    child.once('error', reject);
    child.once('exit', (exitCode) => resolve(exitCode));
  });
  const wallMs = performance.now() - started;
  closeSync(out);
  const text = readFileSync(log, 'utf8');
  const recap = text.slice(text.lastIndexOf('PLAY RECAP'));
  if (code !== 0 || /\b(failed|unreachable)=[1-9]/.test(recap)) {
    throw new Error(`ansible-playbook exited ${code}; the end of ${log}:\n${text.trim().split('\n').slice(-25).join('\n')}`);
  }
  return { wallMs, recap, log };
}
