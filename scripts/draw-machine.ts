/** Writes docs/machine.md from the machine (core/drawing.ts). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineDocument } from '../core/drawing';

writeFileSync(join(__dirname, '..', 'docs', 'machine.md'), machineDocument());
console.log('wrote docs/machine.md');
