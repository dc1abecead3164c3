/** docs/state-machine.md, generated: the diagram plus a table of states from their descriptions. */
import type { AnyStateNode } from 'xstate';
import { agentMachine } from './agent.machine.js';
import { idOf, machineGraph, toMermaid } from './diagram.js';

export function renderStateMachineDoc(): string {
  const { staysOn, rootId, edges } = machineGraph(agentMachine);
  const rootEvents = [...new Set(edges.filter((e) => e.from === rootId && !e.stays).map((e) => e.label))];
  const rows: string[] = [];
  (function walk(node: AnyStateNode, depth: number) {
    for (const child of Object.values(node.states)) {
      const invokes = child.invoke.map((i) => `\`${String(i.src)}\``).join(', ');
      const stays = (staysOn.get(idOf(child)) ?? []).map((e) => `\`${e}\``).join(', ');
      rows.push(`| ${'&nbsp;&nbsp;'.repeat(depth)}\`${child.key}\` | ${child.description ?? ''} | ${invokes} | ${stays} |`);
      walk(child, depth + 1);
    }
  })(agentMachine.root, 0);
  return `# The agent's state machine

<!-- Generated from machines/agent.machine.ts by \`make diagram\`; test/diagram.test.ts fails when it is stale. -->

Left to right in lifecycle order. Each transition is drawn once, from the state that defines it:
the machine-wide handlers (${rootEvents.map((e) => `\`${e}\``).join(', ')}) from **any state**,
a compound state's handlers from the compound state itself — they apply in every state inside it,
unless a state inside handles the event itself: with its own arrow, or without leaving
(the *stays on* column below). Delays keep their names (\`after reportDeadline\`): a retry is the
loop \`attempt → backoff\` (\`onError … [guard]\`) and \`backoff → attempt\` (\`after <delay>\`).

The same graph drawn by Graphviz: [state-machine.svg](state-machine.svg) (\`make diagram\` redraws it
when \`dot\` is installed; \`runs-fleet-agent diagram --format dot\` prints its source).

\`\`\`mermaid
${toMermaid(agentMachine).trimEnd()}
\`\`\`

| state | what happens | invokes | stays on |
|---|---|---|---|
${rows.join('\n')}
`;
}
