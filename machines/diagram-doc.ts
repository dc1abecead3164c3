/** docs/state-machine.md, generated: the diagram plus a table of states from their descriptions. */
import type { AnyStateNode } from 'xstate';
import { agentMachine } from './agent.machine.js';
import { toMermaid } from './diagram.js';

export function renderStateMachineDoc(): string {
  const rows: string[] = [];
  (function walk(node: AnyStateNode, depth: number) {
    for (const child of Object.values(node.states)) {
      const invokes = child.invoke.map((i) => `\`${String(i.src)}\``).join(', ');
      rows.push(`| ${'&nbsp;&nbsp;'.repeat(depth)}\`${child.key}\` | ${child.description ?? ''} | ${invokes} |`);
      walk(child, depth + 1);
    }
  })(agentMachine.root, 0);
  return `# The agent's state machine

<!-- Generated from machines/agent.machine.ts by \`make diagram\`; test/diagram.test.ts fails when it is stale. -->

Root-level events (SIGTERM, SPOT_INTERRUPTION, TIMEOUT, DISK_FULL, PANIC) are drawn from every
top-level state they apply to; states that handle an event themselves override the root.
\`runs-fleet-agent diagram --format dot | dot -Tsvg\` renders the same graph with Graphviz.

\`\`\`mermaid
${toMermaid(agentMachine).trimEnd()}
\`\`\`

| state | what happens | invokes |
|---|---|---|
${rows.join('\n')}
`;
}
