/**
 * The state diagram, generated from the machine definition itself (never drawn by hand):
 * Mermaid `stateDiagram-v2` for docs, Graphviz DOT for pictures.
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';

export interface Edge {
  from: string;
  to: string;
  label: string;
}

interface Graph {
  nodes: AnyStateNode[];
  edges: Edge[];
}

const idOf = (node: AnyStateNode): string => node.path.join('_') || 'root';

/** `xstate.done.actor.0.agent.booting.identity` → `done: resolveIdentity`, etc. */
export function eventLabel(node: AnyStateNode, eventType: string): string {
  const invokes = node.invoke.map((inv) => ({ id: inv.id, src: typeof inv.src === 'string' ? inv.src : inv.id }));
  const srcOf = (id: string) => invokes.find((inv) => inv.id === id)?.src ?? id.split('.').pop();
  if (eventType.startsWith('xstate.done.actor.')) return `onDone ${srcOf(eventType.slice('xstate.done.actor.'.length))}`;
  if (eventType.startsWith('xstate.error.actor.')) return `onError ${srcOf(eventType.slice('xstate.error.actor.'.length))}`;
  if (eventType.startsWith('xstate.after.')) return `after ${eventType.slice('xstate.after.'.length).split('.')[0]}`;
  if (eventType.startsWith('xstate.done.state.')) return 'done';
  return eventType;
}

function guardLabel(guard: unknown): string {
  if (!guard) return '';
  if (typeof guard === 'string') return ` [${guard}]`;
  const type = (guard as { type?: string }).type;
  return type ? ` [${type}]` : ' [guard]';
}

const handles = (node: AnyStateNode, eventType: string) => node.transitions.has(eventType);
const subtreeHandles = (node: AnyStateNode, eventType: string): boolean =>
  handles(node, eventType) || Object.values(node.states).some((child) => subtreeHandles(child, eventType));

/**
 * Where a root-level transition really applies: from a whole top-level state when nothing in
 * it handles the event; otherwise from each descendant whose own ancestors leave it unhandled.
 */
function rootSources(machine: AnyStateMachine, eventType: string): AnyStateNode[] {
  const sources: AnyStateNode[] = [];
  const visit = (node: AnyStateNode) => {
    if (handles(node, eventType)) return;
    if (!subtreeHandles(node, eventType)) {
      sources.push(node);
      return;
    }
    for (const child of Object.values(node.states)) visit(child);
  };
  // A top-level final state ends the machine: nothing applies from it.
  for (const top of Object.values(machine.root.states)) if (top.type !== 'final') visit(top);
  return sources;
}

/** Every state node and every transition that changes state, with root transitions drawn from each top-level state they apply to. */
export function machineGraph(machine: AnyStateMachine): Graph {
  const nodes: AnyStateNode[] = [];
  const edges: Edge[] = [];
  const visit = (node: AnyStateNode) => {
    if (node !== machine.root) nodes.push(node);
    for (const [eventType, transitions] of node.transitions) {
      const sources = node === machine.root ? rootSources(machine, eventType) : [node];
      for (const t of transitions) {
        for (const target of t.target ?? []) {
          for (const source of sources) {
            edges.push({ from: idOf(source), to: idOf(target), label: eventLabel(node, eventType) + guardLabel(t.guard) });
          }
        }
      }
    }
    for (const t of node.always ?? []) {
      for (const target of t.target ?? []) {
        edges.push({ from: idOf(node), to: idOf(target), label: `always${guardLabel(t.guard)}` });
      }
    }
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(machine.root);
  const unique = new Map(edges.map((e) => [`${e.from}|${e.to}|${e.label}`, e]));
  return { nodes, edges: [...unique.values()] };
}

const escapeLabel = (text: string) => text.replace(/[:{}]/g, '');

export function toMermaid(machine: AnyStateMachine): string {
  const { edges } = machineGraph(machine);
  const lines = ['stateDiagram-v2'];
  const render = (node: AnyStateNode, indent: string) => {
    const children = Object.values(node.states);
    const id = idOf(node);
    if (node !== machine.root) {
      const invokes = node.invoke.map((inv) => (typeof inv.src === 'string' ? inv.src : inv.id));
      if (children.length === 0) {
        lines.push(`${indent}state "${node.key}" as ${id}`);
        if (invokes.length > 0) lines.push(`${indent}${id} : invoke ${invokes.join(', ')}`);
        if (node.type === 'final') lines.push(`${indent}${id} --> [*]`);
        return;
      }
      lines.push(`${indent}state "${node.key}" as ${id} {`);
      if (invokes.length > 0) lines.push(`${indent}  note right of ${id}_${node.initial?.target[0]?.key ?? ''} : ${node.key} invokes ${invokes.join(', ')}`);
    }
    const inner = node === machine.root ? indent : `${indent}  `;
    const initial = node.initial?.target[0];
    if (initial) lines.push(`${inner}[*] --> ${idOf(initial)}`);
    for (const child of children) render(child, inner);
    if (node !== machine.root) lines.push(`${indent}}`);
  };
  render(machine.root, '  ');
  for (const e of edges) lines.push(`  ${e.from} --> ${e.to} : ${escapeLabel(e.label)}`);
  return `${lines.join('\n')}\n`;
}

export function toDot(machine: AnyStateMachine): string {
  const { edges } = machineGraph(machine);
  const lines = ['digraph agent {', '  rankdir=LR;', '  compound=true;', '  node [shape=box, style=rounded, fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=9];'];
  const render = (node: AnyStateNode, indent: string) => {
    const children = Object.values(node.states);
    if (children.length === 0) {
      const shape = node.type === 'final' ? ', peripheries=2' : '';
      lines.push(`${indent}${idOf(node)} [label="${node.key}"${shape}];`);
      return;
    }
    if (node !== machine.root) {
      lines.push(`${indent}subgraph cluster_${idOf(node)} {`, `${indent}  label="${node.key}";`, `${indent}  style=rounded;`);
    }
    for (const child of children) render(child, `${indent}  `);
    if (node !== machine.root) lines.push(`${indent}}`);
  };
  render(machine.root, '');
  // DOT edges connect leaves: an edge to or from a compound state uses its initial leaf.
  const leaf = (id: string): string => {
    let node = machine.root as AnyStateNode;
    for (const key of id.split('_')) node = node.states[key] ?? node;
    while (Object.keys(node.states).length > 0 && node.initial?.target[0]) node = node.initial.target[0];
    return idOf(node);
  };
  const isCompound = (id: string) => {
    let node = machine.root as AnyStateNode;
    for (const key of id.split('_')) node = node.states[key] ?? node;
    return Object.keys(node.states).length > 0;
  };
  for (const e of edges) {
    const attrs = [`label="${e.label.replace(/"/g, "'")}"`];
    if (isCompound(e.from)) attrs.push(`ltail=cluster_${e.from}`);
    if (isCompound(e.to) && e.to !== e.from) attrs.push(`lhead=cluster_${e.to}`);
    lines.push(`  ${leaf(e.from)} -> ${leaf(e.to)} [${attrs.join(', ')}];`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
