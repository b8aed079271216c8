/**
 * Which of the workflow's changes a run takes, asked once, in this order, before the run's first await. A patch
 * asked after the plan's local activity, in the same workflow task, is not known on replay (the marker comes after
 * the activity's marker), so a run that asked there could not be replayed. Asking each one unconditionally is
 * harmless: a patch that does not concern a run's plan changes nothing in it. The order is the order in which the
 * runs recorded before each change asked them (test/histories), so every recorded history still replays.
 */
import { patched } from '@temporalio/workflow';
import type { UpgradePlan } from '../core/plan';

export interface RunVersions {
  /** Trust policies: capped plans, strict messages, signed decisions. */
  trusted: boolean;
  /** Sites run on task queues of their own. */
  siteQueues: boolean;
  /** The rehearsal runs at the end of preflight, before the outage. */
  rehearseBeforeOffline: boolean;
  /** The plan's notify targets are told. */
  notifications: boolean;
  /** Hosts may start at any version on the upgrade path and roll back to their own. */
  perHostVersions: boolean;
  /** A host that failed preflight may be left out once confirmed offline. */
  confirmsOfflineSkips: boolean;
  /** The plan is validated and its defaults filled by a local activity whose result the history keeps. */
  planNormalized: boolean;
  /** Activities are scheduled with the short heartbeat timeout (core/heartbeat.ts), so a lost worker is noticed in seconds. */
  shortHeartbeat: boolean;
  /** The backup is read back (database.verifyBackup) and its checksum compared before the schema gate. */
  backupVerified: boolean;
}

export function runVersions(): RunVersions {
  return {
    trusted: patched('trust-policy'),
    siteQueues: patched('site-task-queues'),
    rehearseBeforeOffline: patched('rehearsal-before-offline'),
    notifications: patched('notifications'),
    perHostVersions: patched('per-host-versions'),
    confirmsOfflineSkips: patched('preflight-offline-confirmation'),
    planNormalized: patched('plan-normalized'),
    shortHeartbeat: patched('short-heartbeat-timeout'),
    backupVerified: patched('backup-verified'),
  };
}

/** Runs from before rehearsed inside the outage, after the production backup; today's rehearse before beforeOffline. */
export function rehearsesInBackup(plan: UpgradePlan, versions: RunVersions): boolean {
  return plan.database.rehearse !== undefined && !versions.rehearseBeforeOffline;
}

/** What planRun needs to know of a run's versions, so the first plan and the one after preflight agree. */
export function planOptions(plan: UpgradePlan, versions: RunVersions): { rehearseInBackup: boolean; backupVerified: boolean } {
  return { rehearseInBackup: rehearsesInBackup(plan, versions), backupVerified: versions.backupVerified };
}
