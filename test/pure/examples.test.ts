/** Every plan in examples/ is valid, and the JSON ready to paste into the Web UI is the YAML lab plan. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { hostTransport, validatePlan } from '../../core/plan';

const EXAMPLES = join(__dirname, '..', '..', 'examples');
const files = readdirSync(EXAMPLES).filter((f) => /\.(ya?ml|json)$/.test(f));

describe('examples/', () => {
  it.each(files)('%s is a valid plan', (file) => {
    const result = validatePlan(parse(readFileSync(join(EXAMPLES, file), 'utf8')));
    expect(result.ok ? 'valid' : result.message).toBe('valid');
  });

  it('appv-lab.json is appv-lab.yaml (regenerate it when the YAML changes)', () => {
    expect(JSON.parse(readFileSync(join(EXAMPLES, 'appv-lab.json'), 'utf8'))).toEqual(parse(readFileSync(join(EXAMPLES, 'appv-lab.yaml'), 'utf8')));
  });

  it('real-world templates reach Windows hosts over ssh and mark their placeholders', () => {
    for (const file of ['appv-windows.yaml', 'gp-web-windows.yaml']) {
      const text = readFileSync(join(EXAMPLES, file), 'utf8');
      const result = validatePlan(parse(text));
      if (!result.ok) throw new Error(result.message);
      const transports = result.plan.hosts.map((host) => hostTransport(result.plan, host));
      expect(transports.every((t) => t.kind === 'ssh' && t.address.startsWith('CHANGE-ME-'))).toBe(true);
      // The key by reference, the host key pinned: nothing in a template logs in on trust.
      expect(transports.every((t) => t.kind === 'ssh' && t.key?.startsWith('file:') && (t.hostKey || t.knownHosts))).toBe(true);
      expect(text).toContain('CHANGE-ME');
    }
  });
});
