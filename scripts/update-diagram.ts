/**
 * `make diagram`: regenerates docs/state-machine.md from the machine definition, and
 * docs/state-machine.svg with Graphviz when `dot` is installed (`make graphviz` installs it).
 * Without dot (offline, say) the picture is left as it is, with a message; the doc is always written.
 * The only writer of docs/: `make demo` writes its pictures under out/.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { agentMachine } from '../machines/agent.machine.js';
import { renderStateMachineDoc } from '../machines/diagram-doc.js';
import { toDot } from '../machines/diagram.js';

writeFileSync('docs/state-machine.md', renderStateMachineDoc());
console.log('wrote docs/state-machine.md');

// Written only when dot succeeded: a failed run leaves the committed picture intact.
const dot = spawnSync('dot', ['-Tsvg'], { input: toDot(agentMachine), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
if (dot.error) {
  const missing = (dot.error as NodeJS.ErrnoException).code === 'ENOENT';
  console.log(`docs/state-machine.svg not redrawn: ${missing ? "Graphviz's dot is not installed (`make graphviz` installs it)" : `dot did not run (${dot.error.message})`}`);
} else if (dot.status !== 0) {
  console.error(`dot failed (exit ${dot.status}): ${dot.stderr}`);
  process.exitCode = 1;
} else {
  if (dot.stderr.trim()) console.log(dot.stderr.trim());
  writeFileSync('docs/state-machine.svg', dot.stdout);
  console.log('wrote docs/state-machine.svg');
}
