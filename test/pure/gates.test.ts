/** Gate rules: which approval or rejection is accepted, and when approvals reach the quorum. */
import { describe, expect, it } from 'vitest';
import { openGate, quorumReached, refuseDecision } from '../../core/gates';
import type { PendingGate } from '../../core/status';

function pending(overrides: Partial<PendingGate> = {}): PendingGate {
  return { gate: 'beforeOffline', instructions: 'Approve when the window opens.', approvers: ['alice', 'bob'], quorum: 1, approvedBy: [], ...overrides };
}

describe('openGate', () => {
  it('opens a gate with no approvals from its definition', () => {
    const gate = { instructions: 'Check the backup.', approvers: ['alice'], quorum: 2 };
    expect(openGate('beforeSchemaUpgrade', gate)).toEqual({ gate: 'beforeSchemaUpgrade', instructions: 'Check the backup.', approvers: ['alice'], quorum: 2, approvedBy: [] });
    expect(openGate('beforeSchemaUpgrade', gate, '2030-01-01T00:00:00.000Z').expiresAt).toBe('2030-01-01T00:00:00.000Z');
  });
});

describe('refuseDecision', () => {
  it('refuses when no gate is pending', () => {
    expect(refuseDecision(undefined, { approver: 'alice' }, 'approve')).toBe('no gate is pending');
    expect(refuseDecision(undefined, { gate: 'beforeOnline', approver: 'alice' }, 'reject')).toBe('gate beforeOnline is not pending');
  });

  it('refuses a decision for another gate', () => {
    expect(refuseDecision(pending(), { gate: 'beforeOnline', approver: 'alice' }, 'approve')).toBe(
      'gate beforeOnline is not pending (the pending gate is beforeOffline)',
    );
  });

  it('refuses an approver outside the allowed list, for approvals and rejections alike', () => {
    for (const kind of ['approve', 'reject'] as const) {
      expect(refuseDecision(pending(), { approver: 'mallory' }, kind)).toBe('mallory may not decide gate beforeOffline; allowed: alice, bob');
    }
  });

  it('refuses a second approval by the same approver', () => {
    expect(refuseDecision(pending({ quorum: 2, approvedBy: ['alice'] }), { approver: 'alice' }, 'approve')).toBe('alice has already approved gate beforeOffline');
  });

  it.each(['', '   '])('refuses an empty approver name %j', (approver) => {
    expect(refuseDecision(pending(), { approver }, 'approve')).toBe('an approver name is required');
    expect(refuseDecision(undefined, { approver }, 'reject')).toBe('an approver name is required');
  });

  it('refuses input without an approver at all', () => {
    expect(refuseDecision(pending(), {} as never, 'approve')).toBe('an approver name is required');
  });

  it('accepts an allowed approver, with or without naming the pending gate', () => {
    expect(refuseDecision(pending(), { approver: 'alice' }, 'approve')).toBeUndefined();
    expect(refuseDecision(pending(), { gate: 'beforeOffline', approver: 'bob', comment: 'ok' }, 'approve')).toBeUndefined();
  });

  it('accepts anyone when the gate lists no approvers', () => {
    expect(refuseDecision(pending({ approvers: [] }), { approver: 'mallory' }, 'approve')).toBeUndefined();
  });

  it('accepts a second approver, and a rejection from someone who already approved', () => {
    const halfway = pending({ quorum: 2, approvedBy: ['alice'] });
    expect(refuseDecision(halfway, { approver: 'bob' }, 'approve')).toBeUndefined();
    expect(refuseDecision(halfway, { approver: 'alice' }, 'reject')).toBeUndefined();
  });
});

describe('quorumReached', () => {
  it('needs as many distinct approvals as the quorum', () => {
    expect(quorumReached(pending({ quorum: 2, approvedBy: [] }))).toBe(false);
    expect(quorumReached(pending({ quorum: 2, approvedBy: ['alice'] }))).toBe(false);
    expect(quorumReached(pending({ quorum: 2, approvedBy: ['alice', 'bob'] }))).toBe(true);
  });

  it('is reached by one approval at the default quorum', () => {
    expect(quorumReached(pending({ quorum: 1, approvedBy: ['bob'] }))).toBe(true);
  });
});
