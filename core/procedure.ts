/**
 * The vendor procedure's order, written once. Both seeds (App-V 4.5, Dynamics GP web components scale-out) share it:
 * check every host → approval → sign users out → take every host offline → back up the shared database → upgrade the
 * one DB-owning host (its setup upgrades the schema) → upgrade the rest → verify → bring every host back online.
 *
 * The phase machine (core/machine.ts), `cutover plan`'s preview (core/planner.ts) and the drawing in docs/machine.md
 * (core/drawing.ts, checked by a test) are all made from this table.
 */
import type { GateName } from './plan';

export const PHASES = ['preflight', 'drain', 'stop', 'backup', 'upgradeOwner', 'upgradeRest', 'verify', 'online'] as const;
export type PhaseName = (typeof PHASES)[number];

/** Gates between two phases: each is a state of the machine of its own. */
export type GateBetween = 'beforeOffline' | 'beforeSchemaUpgrade' | 'beforeOnline';
/** Gates that open inside a phase, at a point only the phase knows (after the backup, before a wave). */
export type GateWithin = Exclude<GateName, GateBetween>;

/**
 * What `status.phase` and the CutoverPhase search attribute say: a contract with operators' scripts and saved
 * searches, so these names never change even where the machine's do.
 */
export type PublicPhase =
  | 'preflight'
  | 'draining'
  | 'taking-offline'
  | 'backing-up'
  | 'upgrading-db-owner'
  | 'upgrading-hosts'
  | 'verifying'
  | 'bringing-online'
  | 'awaiting-approval'
  | 'awaiting-operator'
  | 'rolling-back'
  | 'completed'
  | 'rejected'
  | 'failed'
  | 'rolled-back';

export interface ProcedurePhase {
  phase: PhaseName;
  publicPhase: PublicPhase;
  title: string;
  /** The gate that opens before this phase; `always` when every plan has it. */
  gateBefore?: { gate: GateBetween; always?: true };
  /**
   * Gates the phase opens itself, and when. Rejecting one rolls back where earlier phases changed hosts, and ends the
   * run untouched where none did.
   */
  gatesWithin?: { gate: GateWithin; when: string }[];
  /** Gates runs from before opened in this phase (beforeRehearsal, in the backup): their rejection still counts. */
  formerGatesWithin?: GateWithin[];
  /**
   * Whether the phase changes hosts. A failure before any phase that does ends the run with nothing touched; after
   * one, it waits for the operator, and a rejection rolls back.
   */
  changesHosts: boolean;
}

export const PROCEDURE: readonly ProcedurePhase[] = [
  {
    phase: 'preflight',
    publicPhase: 'preflight',
    title: 'Preflight: reach every host and check its version',
    // The seed tries the database upgrade on a backup copy, on a test server, before the production upgrade.
    gatesWithin: [{ gate: 'beforeRehearsal', when: 'after the checks, before the rehearsal: a fresh backup, and the schema upgrade tried on its copy' }],
    changesHosts: false,
  },
  {
    phase: 'drain',
    publicPhase: 'draining',
    title: 'Drain: sign users out, block new sessions',
    gateBefore: { gate: 'beforeOffline', always: true },
    changesHosts: true,
  },
  { phase: 'stop', publicPhase: 'taking-offline', title: 'Take offline: stop services on every host', changesHosts: true },
  {
    phase: 'backup',
    publicPhase: 'backing-up',
    title: 'Back up the shared database',
    formerGatesWithin: ['beforeRehearsal'],
    changesHosts: true,
  },
  {
    phase: 'upgradeOwner',
    publicPhase: 'upgrading-db-owner',
    title: 'Upgrade the DB-owning host (upgrades the schema)',
    gateBefore: { gate: 'beforeSchemaUpgrade' },
    changesHosts: true,
  },
  {
    phase: 'upgradeRest',
    publicPhase: 'upgrading-hosts',
    title: 'Upgrade the remaining hosts',
    gatesWithin: [{ gate: 'beforeEachBatch', when: 'before each wave of the remaining hosts' }],
    changesHosts: true,
  },
  { phase: 'verify', publicPhase: 'verifying', title: 'Verify services, versions and schema', changesHosts: true },
  { phase: 'online', publicPhase: 'bringing-online', title: 'Bring every host back online', gateBefore: { gate: 'beforeOnline' }, changesHosts: true },
];

export function procedurePhase(phase: PhaseName): ProcedurePhase {
  const found = PROCEDURE.find((row) => row.phase === phase);
  if (!found) throw new Error(`no phase ${phase} in the procedure`);
  return found;
}

/** Whether any phase before `index` changed hosts: a rejection or failure there must roll back. */
export function hostsChangedBefore(index: number): boolean {
  return PROCEDURE.slice(0, index).some((row) => row.changesHosts);
}
