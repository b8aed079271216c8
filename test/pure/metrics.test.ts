/** The metrics endpoint's address, read from the flag or the environment, and what a host step counts as. */
import { describe, expect, it } from 'vitest';
import { UserError } from '../../core/errors';
import { hostStepOutcome } from '../../core/metrics';
import { metricsAddress } from '../../worker/metrics';

describe('metrics', () => {
  it('serves on the flag’s address, else CUTOVER_METRICS_ADDRESS’s, else nowhere', () => {
    expect(metricsAddress('127.0.0.1:9464', { CUTOVER_METRICS_ADDRESS: '0.0.0.0:1' })).toBe('127.0.0.1:9464');
    expect(metricsAddress(undefined, { CUTOVER_METRICS_ADDRESS: ' 0.0.0.0:9464 ' })).toBe('0.0.0.0:9464');
    expect(metricsAddress(undefined, { CUTOVER_METRICS_ADDRESS: '[::1]:9464' })).toBe('[::1]:9464');
    expect(metricsAddress(undefined, {})).toBeUndefined();
    expect(metricsAddress(undefined, { CUTOVER_METRICS_ADDRESS: '' })).toBeUndefined();
  });

  it('refuses an address that is not HOST:PORT as a user error naming where it came from', () => {
    expect(() => metricsAddress('9464', {})).toThrow(new UserError('--metrics "9464" is not an address to serve metrics on: expected HOST:PORT, e.g. 0.0.0.0:9464 or 127.0.0.1:9464 ([::1]:9464 for IPv6)'));
    expect(() => metricsAddress(undefined, { CUTOVER_METRICS_ADDRESS: 'localhost:70000' })).toThrow(/^CUTOVER_METRICS_ADDRESS "localhost:70000" .*the port is from 1 to 65535$/);
    expect(() => metricsAddress('http://x:1/metrics', {})).toThrow(UserError);
  });

  it('counts a host step as succeeded, failed, timed out, or not run', () => {
    expect(hostStepOutcome({ exitCode: 0 })).toBe('succeeded');
    expect(hostStepOutcome({ exitCode: 3 })).toBe('failed');
    expect(hostStepOutcome({ exitCode: 137, timedOut: true })).toBe('timed-out');
    expect(hostStepOutcome('error')).toBe('error');
  });
});
