/** docs/machine.md is drawn from the machine: a change to the procedure or the machine must redraw it. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { machineDocument } from '../../core/drawing';

it('docs/machine.md is the drawing of today\'s machine (redraw with `npm run draw-machine`)', () => {
  const committed = readFileSync(join(__dirname, '..', '..', 'docs', 'machine.md'), 'utf8');
  expect(committed).toBe(machineDocument());
});

it('draws every transition the old hand-drawn picture lacked: a rejected gate inside a phase rolls back', () => {
  const drawing = machineDocument();
  expect(drawing).toContain('backup --> rollingBack: GATE_REJECTED');
  expect(drawing).toContain('upgradeRest --> rollingBack: GATE_REJECTED');
  expect(drawing).toContain('preflight --> rejected: GATE_REJECTED');
});
