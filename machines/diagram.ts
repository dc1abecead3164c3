/**
 * The state diagram, generated from the machine definition itself (never drawn by hand):
 * Mermaid `stateDiagram-v2` for docs, Graphviz DOT for pictures.
 *
 * Readable rather than exhaustive:
 *  - left to right in lifecycle order (LIFECYCLE is the only list of state names here: layout only);
 *  - a transition is drawn once, from the node that defines it: a root handler from the `any state`
 *    node, a compound state's handler from the compound state's border (DOT `ltail`), never once per
 *    leaf it applies to. A state that handles the event itself is drawn from that state; one that
 *    handles it without a transition is listed as "stays on" (the ancestor's arrow does not apply);
 *  - delays keep their names (`after reportDeadline`), retries their loop (attempt → backoff on
 *    `onError … [guard]`, backoff → attempt `after <delay>`), and a delay that only raises an event is
 *    a dashed loop (`after maxRuntime / raise TIMEOUT`).
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';

/** Left to right. A state not found (renamed, or not there yet) is skipped; one level of wrapper is looked through. */
export const LIFECYCLE = ['booting', 'downloading', 'registering', 'running', 'draining', 'reporting', 'terminating'];

export type EdgeKind = 'event' | 'after' | 'always' | 'done' | 'error';

export interface Edge {
  from: string;
  to: string;
  label: string;
  kind: EdgeKind;
  /** No target: the state is not left (drawn as a dashed loop; only delays are drawn this way). */
  stays: boolean;
}

export interface Graph {
  /** The root's id: the `any state` node that root handlers are drawn from. */
  rootId: string;
  nodes: AnyStateNode[];
  edges: Edge[];
  /** Lifecycle states found, in LIFECYCLE order, by id. */
  lifecycle: string[];
  /** By id: events a state handles without a transition although an ancestor would move on them. */
  staysOn: Map<string, string[]>;
}

export const idOf = (node: AnyStateNode): string => (node.path.length > 0 ? node.path.join('_') : node.key);

/** `xstate.done.actor.0.agent.booting.identity` → `onDone resolveIdentity`, etc. */
export function eventLabel(node: AnyStateNode, eventType: string): string {
  const invokes = node.invoke.map((inv) => ({ id: inv.id, src: typeof inv.src === 'string' ? inv.src : inv.id }));
  const srcOf = (id: string) => invokes.find((inv) => inv.id === id)?.src ?? id.split('.').pop();
  if (eventType.startsWith('xstate.done.actor.')) return `onDone ${srcOf(eventType.slice('xstate.done.actor.'.length))}`;
  if (eventType.startsWith('xstate.error.actor.')) return `onError ${srcOf(eventType.slice('xstate.error.actor.'.length))}`;
  if (eventType.startsWith('xstate.after.')) {
    const delay = eventType.slice('xstate.after.'.length).split('.')[0];
    return `after ${/^\d+$/.test(delay) ? `${delay}ms` : delay}`;
  }
  if (eventType.startsWith('xstate.done.state.')) return 'done';
  return eventType;
}

function kindOf(eventType: string): EdgeKind {
  if (eventType.startsWith('xstate.after.')) return 'after';
  if (eventType.startsWith('xstate.error.')) return 'error';
  if (eventType.startsWith('xstate.done.')) return 'done';
  return 'event';
}

function guardLabel(guard: unknown): string {
  if (!guard) return '';
  if (typeof guard === 'string') return ` [${guard}]`;
  const type = (guard as { type?: string }).type;
  return type ? ` [${type}]` : ' [guard]';
}

/** What a transition that stays does: `raise TIMEOUT`, `endStandby`. */
function actionsLabel(actions: readonly unknown[] | undefined): string {
  const names = (actions ?? []).flatMap((action): string[] => {
    if (typeof action === 'string') return [action];
    const a = action as { type?: unknown; event?: unknown };
    if (a?.type === 'xstate.raise') {
      const raised = a.event && typeof a.event === 'object' ? (a.event as { type?: unknown }).type : undefined;
      return [typeof raised === 'string' ? `raise ${raised}` : 'raise'];
    }
    return typeof a?.type === 'string' && !a.type.startsWith('xstate.') ? [a.type] : [];
  });
  return names.length > 0 ? ` / ${names.join(', ')}` : '';
}

const childrenOf = (node: AnyStateNode): AnyStateNode[] => Object.values(node.states);
const isCompound = (node: AnyStateNode) => childrenOf(node).length > 0;
const contains = (outer: AnyStateNode, inner: AnyStateNode): boolean => inner.path.length >= outer.path.length && outer.path.every((key, i) => inner.path[i] === key);

/** Lifecycle states first-level or inside a wrapper (one level down), by key. */
function lifecycleNodes(machine: AnyStateMachine): AnyStateNode[] {
  const found: AnyStateNode[] = [];
  for (const key of LIFECYCLE) {
    const top = machine.root.states[key] ?? childrenOf(machine.root).map((wrapper) => wrapper.states[key]).find(Boolean);
    if (top) found.push(top);
  }
  return found;
}

/** Children in definition order, except that lifecycle states take the slots of lifecycle states in lifecycle order. */
function orderedChildren(node: AnyStateNode): AnyStateNode[] {
  const children = childrenOf(node);
  const rank = (child: AnyStateNode) => LIFECYCLE.indexOf(child.key);
  const inLifecycle = children.filter((child) => rank(child) >= 0).sort((a, b) => rank(a) - rank(b));
  return children.map((child) => (rank(child) >= 0 ? inLifecycle.shift()! : child));
}

/** Every transition that changes state, each from the node that defines it; delays that stay as loops. */
export function machineGraph(machine: AnyStateMachine): Graph {
  const nodes: AnyStateNode[] = [];
  const edges: Edge[] = [];
  const staysOn = new Map<string, string[]>();
  const visit = (node: AnyStateNode) => {
    if (node !== machine.root) nodes.push(node);
    const from = idOf(node);
    for (const [eventType, transitions] of node.transitions) {
      const kind = kindOf(eventType);
      for (const t of transitions) {
        const label = eventLabel(node, eventType) + guardLabel(t.guard);
        const targets = t.target ?? [];
        for (const target of targets) edges.push({ from, to: idOf(target), label, kind, stays: false });
        if (targets.length === 0 && kind === 'after') edges.push({ from, to: from, label: label + actionsLabel(t.actions), kind, stays: true });
      }
      // Handled here without a transition, while the nearest ancestor that handles it would move.
      if (kind === 'event' && transitions.every((t) => !t.target?.length)) {
        let ancestor = node.parent;
        while (ancestor && !ancestor.transitions.has(eventType)) ancestor = ancestor.parent;
        if (ancestor?.transitions.get(eventType)?.some((t) => t.target?.length)) staysOn.set(from, [...(staysOn.get(from) ?? []), eventType]);
      }
    }
    for (const t of node.always ?? []) {
      for (const target of t.target ?? []) edges.push({ from, to: idOf(target), label: `always${guardLabel(t.guard)}`, kind: 'always', stays: false });
    }
    for (const child of orderedChildren(node)) visit(child);
  };
  visit(machine.root);
  const unique = new Map(edges.map((e) => [`${e.from}|${e.to}|${e.label}`, e]));
  return { rootId: idOf(machine.root), nodes, edges: [...unique.values()], lifecycle: lifecycleNodes(machine).map(idOf), staysOn };
}

/** Edges between the same two nodes drawn as one arrow, labels one under the other. */
function mergeParallel(edges: Edge[], classOf: (e: Edge) => string = () => ''): { from: string; to: string; labels: string[]; sample: Edge }[] {
  const groups = new Map<string, { from: string; to: string; labels: string[]; sample: Edge }>();
  for (const e of edges) {
    const key = `${e.from}|${e.to}|${classOf(e)}`;
    const group = groups.get(key) ?? { from: e.from, to: e.to, labels: [], sample: e };
    group.labels.push(e.label);
    groups.set(key, group);
  }
  return [...groups.values()];
}

const escapeMermaid = (text: string) => text.replace(/[:;{}#]/g, '');

export function toMermaid(machine: AnyStateMachine): string {
  const graph = machineGraph(machine);
  const lines = ['stateDiagram-v2', '  direction LR'];
  const rootHasEdges = graph.edges.some((e) => e.from === graph.rootId);
  if (rootHasEdges) lines.push(`  state "any state" as ${graph.rootId}`);
  const render = (node: AnyStateNode, indent: string) => {
    const children = orderedChildren(node);
    const id = idOf(node);
    if (node !== machine.root) {
      const invokes = node.invoke.map((inv) => (typeof inv.src === 'string' ? inv.src : inv.id));
      if (children.length === 0) {
        lines.push(`${indent}state "${node.key}" as ${id}`);
        if (invokes.length > 0) lines.push(`${indent}${id} : invoke ${invokes.join(', ')}`);
        const stays = graph.staysOn.get(id);
        if (stays) lines.push(`${indent}${id} : stays on ${stays.join(', ')}`);
        if (node.type === 'final') lines.push(`${indent}${id} --> [*]`);
        return;
      }
      lines.push(`${indent}state "${node.key}" as ${id} {`);
      const first = node.initial?.target[0] ?? children[0];
      if (invokes.length > 0 && first) lines.push(`${indent}  note right of ${idOf(first)} : ${node.key} invokes ${invokes.join(', ')}`);
    }
    const inner = node === machine.root ? indent : `${indent}  `;
    const initial = node.type === 'parallel' ? undefined : node.initial?.target[0];
    if (initial) lines.push(`${inner}[*] --> ${idOf(initial)}`);
    children.forEach((child, i) => {
      if (node.type === 'parallel' && i > 0) lines.push(`${inner}--`);
      render(child, inner);
    });
    if (node !== machine.root) lines.push(`${indent}}`);
  };
  render(machine.root, '  ');
  for (const e of mergeParallel(graph.edges)) lines.push(`  ${e.from} --> ${e.to} : ${escapeMermaid(e.labels.join(', '))}`);
  return `${lines.join('\n')}\n`;
}

/** Arrow styles: what a reader tells apart at a glance (the legend under the picture says it). */
function dotStyle(fromBorder: boolean, kind: EdgeKind, stays: boolean): string {
  const color = kind === 'after' ? '#9a6700' : fromBorder ? '#b42318' : '';
  return [color && `color="${color}", fontcolor="${color}"`, fromBorder && 'penwidth=1.6', stays && 'style=dashed'].filter(Boolean).join(', ');
}
const DOT_LEGEND =
  'bold: from a whole state (its border) or from any state: applies in every state inside, unless one handles the event itself  ·  red: such an event  ·  amber: after a named delay (deadline, backoff, poll)  ·  dashed: the state is not left';

/** A DOT string; a newline in the text becomes a line break in the picture. */
const dotString = (text: string) => `"${text.replace(/\\/g, '\\\\').replace(/"/g, "'").replace(/\n/g, '\\n')}"`;

export function toDot(machine: AnyStateMachine): string {
  const graph = machineGraph(machine);
  const byId = new Map<string, AnyStateNode>([[graph.rootId, machine.root], ...graph.nodes.map((n) => [idOf(n), n] as const)]);
  const lines = [
    'digraph agent {',
    '  rankdir=LR;',
    '  compound=true;',
    '  newrank=true;',
    '  nodesep=0.25;',
    '  ranksep=0.5;',
    '  fontname="Helvetica";',
    '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  const leafLabel = (node: AnyStateNode) => {
    const stays = graph.staysOn.get(idOf(node));
    return stays ? `${node.key}\nstays on ${stays.join(', ')}` : node.key;
  };
  const render = (node: AnyStateNode, indent: string) => {
    const children = orderedChildren(node);
    const id = idOf(node);
    if (children.length === 0) {
      const shape = node.type === 'final' ? ', peripheries=2' : '';
      lines.push(`${indent}${id} [label=${dotString(leafLabel(node))}${shape}];`);
      return;
    }
    if (node !== machine.root) {
      const stays = graph.staysOn.get(id);
      const title = `${node.key}${node.type === 'parallel' ? ' (parallel)' : ''}${stays ? `\nstays on ${stays.join(', ')}` : ''}`;
      const regionOfParallel = node.parent?.type === 'parallel';
      lines.push(`${indent}subgraph cluster_${id} {`, `${indent}  label=${dotString(title)};`, `${indent}  style=${regionOfParallel ? '"rounded,dashed"' : 'rounded'};`);
    }
    const inner = node === machine.root ? indent : `${indent}  `;
    for (const child of children) render(child, inner);
    if (node !== machine.root) lines.push(`${indent}}`);
  };
  const rootHasEdges = graph.edges.some((e) => e.from === graph.rootId);
  if (rootHasEdges) lines.push(`  ${graph.rootId} [label="any state\\n(unless a state handles it)", shape=note, style=dashed];`);
  render(machine.root, '');

  // DOT edges connect leaves: a compound state stands for its initial leaf, the edge clipped at its border.
  const leafOf = (node: AnyStateNode): AnyStateNode => {
    let leaf = node;
    while (isCompound(leaf)) leaf = (leaf.type !== 'parallel' && leaf.initial?.target[0]) || childrenOf(leaf)[0];
    return leaf;
  };
  const leavesOf = (node: AnyStateNode): AnyStateNode[] => (isCompound(node) ? childrenOf(node).flatMap(leavesOf) : [node]);
  const endpoint = (id: string) => {
    const node = byId.get(id)!;
    return node === machine.root ? id : idOf(leafOf(node));
  };

  // Lifecycle order: every leaf of one lifecycle state left of every leaf of the next (invisible, rank only).
  lines.push('  // lifecycle order, left to right');
  for (let i = 1; i < graph.lifecycle.length; i++) {
    const before = leavesOf(byId.get(graph.lifecycle[i - 1])!);
    const after = leavesOf(byId.get(graph.lifecycle[i])!);
    for (const a of before) for (const b of after) lines.push(`  ${idOf(a)} -> ${idOf(b)} [style=invis, weight=0];`);
  }

  lines.push('  // transitions');
  const fromBorder = (e: Edge) => {
    const from = byId.get(e.from)!;
    return from === machine.root || (isCompound(from) && !contains(from, byId.get(e.to)!));
  };
  for (const group of mergeParallel(graph.edges, (e) => dotStyle(fromBorder(e), e.kind, e.stays))) {
    const from = byId.get(group.from)!;
    const to = byId.get(group.to)!;
    const attrs = [`label=${dotString(group.labels.join('\n'))}`];
    if (from !== machine.root && isCompound(from) && !contains(from, to)) attrs.push(`ltail=cluster_${group.from}`);
    if (to !== machine.root && isCompound(to) && !contains(to, from)) attrs.push(`lhead=cluster_${group.to}`);
    const style = dotStyle(fromBorder(group.sample), group.sample.kind, group.sample.stays);
    if (style) attrs.push(style);
    lines.push(`  ${endpoint(group.from)} -> ${endpoint(group.to)} [${attrs.join(', ')}];`);
  }
  // The `any state` node stands in the column of what most root handlers lead to: a short arrow.
  const rootTargets = graph.edges.filter((e) => e.from === graph.rootId && !e.stays).map((e) => endpoint(e.to));
  const mainTarget = rootTargets.sort((a, b) => rootTargets.filter((t) => t === b).length - rootTargets.filter((t) => t === a).length)[0];
  if (mainTarget) lines.push(`  { rank=same; ${graph.rootId}; ${mainTarget}; }`);
  lines.push(`  label=${dotString(DOT_LEGEND)};`, '  labelloc=b;', '  fontsize=10;', '}');
  return `${lines.join('\n')}\n`;
}
