/**
 * The run's trust, settled before preflight runs any command: the worker's trust policy (read once; the history
 * keeps it), who signed the plan where the policy asks for it, and which secrets the plan may use.
 */
import { ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RunTrust } from '../core/authority';
import { secretRefusals } from '../core/secretPolicy';
import { type TrustPolicy, parseTrustFile, policyDigest, refuseUnsigned, verifyPlanSignature } from '../core/trust';
import { failureMessage } from './activities';
import type { FleetRun } from './fleetRun';
import { invalidIfThrows } from './invalidPlan';

/** Who signed the plan, where the policy requires a signature or the plan carries one; the run ends if it is not good. */
function checkAuthor(run: FleetRun, policy: TrustPolicy, digest: string, signature: string | undefined): void {
  if (signature === undefined) {
    if (!policy.file.plans.requireSigned) return;
    throw ApplicationFailure.nonRetryable('This worker runs signed plans only: start it with `cutover start PLAN --key YOUR.key`, or paste what `cutover sign PLAN --key YOUR.key` prints', 'UnsignedPlan');
  }
  const verified = verifyPlanSignature(signature, policy, { fleet: run.plan.fleet, planDigest: digest });
  if (!verified.ok) throw ApplicationFailure.nonRetryable(`The plan's signature is not accepted: ${verified.reason}`, 'UnsignedPlan');
  run.status.planSignedBy = { author: verified.author, key: verified.fingerprint };
}

/** The worker's trust policy, read once (the history keeps it) and parsed here again: who may decide what. */
export async function readTrust(run: FleetRun, digest: string, signature: string | undefined): Promise<RunTrust> {
  const source = await proxyActivities<Activities>({ startToCloseTimeout: '1m', retry: { maximumAttempts: 5 } })
    .readTrustPolicy()
    .catch((error: unknown) => {
      throw ApplicationFailure.nonRetryable(`The worker's trust policy could not be read: ${failureMessage(error)}`, 'InvalidTrustFile');
    });
  const parsed = parseTrustFile(source.file);
  if (!parsed.ok) throw ApplicationFailure.nonRetryable(`The worker's trust file ${source.source} is not valid:\n${parsed.message}`, 'InvalidTrustFile');
  // Before preflight runs any command: only a plan its authors signed, where the policy says so, and that never gets
  // the worker to hand over what it may not.
  checkAuthor(run, parsed.policy, digest, signature);
  const refused = invalidIfThrows(() => secretRefusals(run.plan, parsed.policy, Array.isArray(source.workerFiles) ? source.workerFiles : []));
  if (refused) throw ApplicationFailure.nonRetryable(`The upgrade plan names secrets this worker may not use:\n${refused}`, 'InvalidPlan');
  const { workflowId, firstExecutionRunId } = workflowInfo();
  run.status.firstRunId = firstExecutionRunId;
  run.status.planDigest = digest;
  run.status.trust = { source: source.source, digest: policyDigest(parsed.policy), decisions: refuseUnsigned(parsed.policy) ? 'signed' : 'by-name' };
  return { policy: parsed.policy, run: { workflowId, firstRunId: firstExecutionRunId, fleet: run.plan.fleet, planDigest: digest }, seenNonces: new Set() };
}
