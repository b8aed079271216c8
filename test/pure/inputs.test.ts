/**
 * Message payloads, parsed. New runs refuse anything off the schema with the field and the reason; runs started
 * before strict parsing read a payload as they always did, so their histories replay with the same decisions.
 */
import { describe, expect, it } from 'vitest';
import { ApprovalInput, LegacyApprovalInput, LegacyOperatorInput, OperatorInput, parseDecisionInput, parseInput } from '../../core/inputs';
import { refuseDecision } from '../../core/gates';

describe('strict payloads (runs under a trust policy)', () => {
  it('names the field and the reason, in one line', () => {
    expect(parseInput(ApprovalInput, { approver: 'alice', note: 'ok' }, 'approve signal')).toEqual({ ok: false, reason: 'approve signal refused: the input: Unrecognized key: "note"' });
    expect(parseInput(OperatorInput, { operator: 'olga', hosts: 'appv-02' }, 'skipHost update')).toMatchObject({ ok: false, reason: expect.stringMatching(/^skipHost update refused: hosts: /) });
  });

  it('takes a payload with a token as a signed decision, and says which shape was wrong', () => {
    expect(parseDecisionInput(ApprovalInput, { token: 'cutover1.a.b' }, 'approve signal')).toEqual({ ok: true, value: { signed: { token: 'cutover1.a.b' } } });
    expect(parseDecisionInput(ApprovalInput, { token: 'cutover1.a.b', approver: 'alice' }, 'approve signal')).toEqual({
      ok: false,
      reason: 'approve signal (signed) refused: the input: Unrecognized key: "approver"',
    });
  });
});

describe('payloads of runs from before strict parsing', () => {
  const legacy = (raw: unknown) => parseDecisionInput(ApprovalInput, raw, 'approve signal', LegacyApprovalInput);

  it('accepts what the old code accepted: unknown keys, a null gate, long comments', () => {
    expect(legacy({ approver: 'alice', note: 'ok' })).toEqual({ ok: true, value: { named: { approver: 'alice' } } });
    expect(legacy({ approver: ' alice ', gate: null })).toEqual({ ok: true, value: { named: { approver: 'alice' } } });
    expect(legacy({ approver: 'alice', comment: 'x'.repeat(5000) })).toMatchObject({ ok: true });
    expect(parseDecisionInput(OperatorInput, { operator: 'bob', host: '' }, 'retry signal', LegacyOperatorInput)).toEqual({ ok: true, value: { named: { operator: 'bob' } } });
  });

  it('still refuses what the old code refused, without throwing', () => {
    expect(legacy({ approver: { toString: 1 } })).toMatchObject({ ok: false });
    expect(legacy({ token: 'cutover1.a.b' })).toMatchObject({ ok: false });
    const parsed = legacy({ approver: 'mallory', gate: { toString: 1 } });
    const pending = { gate: 'beforeOffline', instructions: '', approvers: [], quorum: 1, approvedBy: [] };
    expect(parsed.ok && 'named' in parsed.value && refuseDecision(pending, parsed.value.named, 'approve')).toContain('is not pending');
  });
});

describe('a gate nobody may approve', () => {
  it('refuses every approval, so an empty approver list never means anyone', () => {
    const pending = { gate: 'beforeOnline', instructions: '', approvers: [], quorum: 1, approvedBy: [], unreachable: 'nobody is allowed by both the plan and the trust policy' };
    expect(refuseDecision(pending, { approver: 'alice' }, 'approve')).toBe('gate beforeOnline cannot be approved: nobody is allowed by both the plan and the trust policy');
    expect(refuseDecision(pending, { approver: 'alice' }, 'reject')).toBeUndefined();
  });
});
