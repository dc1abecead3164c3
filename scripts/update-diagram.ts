/** Regenerates docs/state-machine.md from the machine definition (`make diagram`). */
import { writeFileSync } from 'node:fs';
import { renderStateMachineDoc } from '../machines/diagram-doc.js';

writeFileSync('docs/state-machine.md', renderStateMachineDoc());
console.log('wrote docs/state-machine.md');
