/**
 * What a parent workflow hands its child workflows and gets back, written compactly: at 10,000 hosts every byte
 * per host is kept in the parent's history once per step. Pure; the round trip is tested in test/pure.
 */
import type { HostOutcome } from '../core/outcomes';
import { keepEnd } from '../core/budget';
import type { Transport } from '../core/plan';
import type { HostTask, StepBatch } from '../core/planner';

const HOST = '{{host}}';

/** A batch whose commands differ only by host id are kept as one template and the list of hosts. */
export type CompactBatch = Omit<StepBatch, 'tasks'> &
  (
    | { hosts: string[]; command: string; undo?: string; transports?: Transport[] }
    | { tasks: HostTask[] }
  );

const isLocal = (transport: Transport) => transport.kind === 'local' && Object.keys(transport).length === 1;
const fill = (template: string, host: string) => template.split(HOST).join(host);

export function compactBatch(batch: StepBatch): CompactBatch {
  const { tasks, ...rest } = batch;
  const first = tasks[0];
  if (!first) return { ...rest, tasks };
  const command = first.command.split(first.host).join(HOST);
  const undo = first.undo?.split(first.host).join(HOST);
  const fits = tasks.every(
    (task) => fill(command, task.host) === task.command && (undo === undefined ? task.undo === undefined : task.undo !== undefined && fill(undo, task.host) === task.undo),
  );
  // A command that holds the host id elsewhere too (or a per-host difference), or a probe, stays as it is.
  if (!fits || command.includes(`${HOST}${HOST}`) || tasks.some((task) => task.probe)) return { ...rest, tasks };
  return {
    ...rest,
    hosts: tasks.map((task) => task.host),
    command,
    ...(undo !== undefined ? { undo } : {}),
    ...(tasks.every((task) => isLocal(task.transport)) ? {} : { transports: tasks.map((task) => task.transport) }),
  };
}

export function expandBatch(compact: CompactBatch): StepBatch {
  if ('tasks' in compact) return compact;
  const { hosts, command, undo, transports, ...rest } = compact;
  return {
    ...rest,
    tasks: hosts.map((host, i) => ({
      host,
      command: fill(command, host),
      ...(undo !== undefined ? { undo: fill(undo, host) } : {}),
      transport: transports?.[i] ?? { kind: 'local' },
    })),
  };
}

/** One batch's outcomes as a child returns them: hosts that succeeded by name, the failed ones in full. */
export interface CompactOutcomes {
  ok: string[];
  /** The output of hosts that succeeded, where the parent reads it: the version step, and steps with record. */
  tails?: Record<string, string>;
  failed: HostOutcome[];
}

/**
 * `tailChars`: how much of each output the result keeps, the host's share of what a child may return (Temporal
 * refuses payloads over 2 MB, and a thousand hosts may fail at once or record an installer's report).
 */
export function compactOutcomes(batch: StepBatch, outcomes: HostOutcome[], tailChars: number): CompactOutcomes {
  const keepTails = batch.step === 'version' || batch.record === true;
  const ok = outcomes.filter((outcome) => outcome.ok);
  return {
    ok: ok.map((outcome) => outcome.host),
    ...(keepTails ? { tails: Object.fromEntries(ok.map((outcome) => [outcome.host, keepEnd(outcome.outputTail, tailChars)])) } : {}),
    failed: outcomes.filter((outcome) => !outcome.ok).map((outcome) => ({ ...outcome, outputTail: keepEnd(outcome.outputTail, tailChars) })),
  };
}

export function expandOutcomes(compact: CompactOutcomes): HostOutcome[] {
  return [
    ...compact.ok.map((host) => ({ host, ok: true, exitCode: 0, outputTail: compact.tails?.[host] ?? '', attempt: 0 })),
    ...compact.failed,
  ];
}
