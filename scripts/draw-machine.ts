/** Writes docs/machine.md from the machine (core/drawing.ts). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineDocument } from '../core/drawing';
import { PROJECT_ROOT } from '../projectRoot';

writeFileSync(join(PROJECT_ROOT, 'docs', 'machine.md'), machineDocument());
console.log('wrote docs/machine.md');
