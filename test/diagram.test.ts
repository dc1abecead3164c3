import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { AnyStateNode } from 'xstate';
import { agentMachine } from '../machines/agent.machine.js';
import { renderStateMachineDoc } from '../machines/diagram-doc.js';
import { LIFECYCLE, eventLabel, idOf, machineGraph, toDot, toMermaid, type Edge } from '../machines/diagram.js';

const graph = machineGraph(agentMachine);
const edges = graph.edges.map((e) => `${e.from}->${e.to}:${e.label}`);
const byId = new Map<string, AnyStateNode>([[graph.rootId, agentMachine.root], ...graph.nodes.map((n) => [idOf(n), n] as const)]);
const node = (id: string) => {
  const found = byId.get(id);
  if (!found) throw new Error(`no state ${id} in the graph`);
  return found;
};
const within = (outer: AnyStateNode, inner: AnyStateNode) => outer.path.every((key, i) => inner.path[i] === key);
const leavesOf = (n: AnyStateNode): AnyStateNode[] => (Object.keys(n.states).length > 0 ? Object.values(n.states).flatMap(leavesOf) : [n]);
/** Where the lifecycle state `key` is: top level, or inside a wrapper one level down. */
const lifecycleState = (key: string) => graph.nodes.find((n) => n.key === key && n.path.length <= 2 && (n.path.length === 1 || n.parent?.parent === agentMachine.root));
/** The id of a lifecycle state, wherever it is (a wrapper may come around running and draining). */
const at = (key: string) => idOf(lifecycleState(key)!);
const hasDot = spawnSync('dot', ['-V']).status === 0;

describe('state diagram', () => {
  it('docs/state-machine.md is generated from the current machine (run `make diagram` when this fails)', () => {
    expect(readFileSync('docs/state-machine.md', 'utf8')).toBe(renderStateMachineDoc());
  });

  it('draws every top-level state and the main lifecycle edges', () => {
    const mermaid = toMermaid(agentMachine);
    expect(mermaid.startsWith('stateDiagram-v2\n')).toBe(true);
    for (const state of LIFECYCLE) expect(mermaid).toMatch(new RegExp(`state "${state}" as (\\w+_)?${state}\\b`));
    expect(edges).toContain('booting_validated->downloading:always');
    expect(edges).toContain('downloading_attempt->registering:onDone downloadRunner');
    expect(edges).toContain('registering_registeringRunner->registering_preparingJob:onDone registerRunner');
    expect(edges).toContain(`registering_preparingJob->${at('running').replace(/_running$/, '')}:onDone prepareJob`); // into withRunner, which starts run.sh
    expect(edges).toContain('booting_standby_polling->booting_validated:onDone readRunnerConfig');
    expect(edges).toContain('booting_standby_waiting->standbyEnded:after standbyDeadline');
    expect(edges).toContain('booting_standby_polling->reporting:onDone readRunnerConfig [standbyStopRequested]'); // a stop during the poll that found a config
    expect(edges).toContain('booting->standbyEnded:SIGTERM');
    expect(edges.filter((e) => e.startsWith('standbyEnded->'))).toEqual([]);
    expect(edges).toContain(`${at('running')}->${at('draining')}:SIGTERM`);
    expect(edges).toContain(`${at('draining')}->${at('reporting')}:RUNNER_EXITED`);
    expect(edges).toContain('reporting_flushingLogs->reporting_sending:LOGS_FLUSHED'); // the log shipper's answer
    // The final report, from sending (or an attempt inside it) to terminating.
    expect(graph.edges.some((e) => within(node(`${at('reporting')}_sending`), node(e.from)) && e.to === at('terminating') && e.label === 'onDone sendTelemetry')).toBe(true);
  });

  describe('reads left to right in lifecycle order', () => {
    it('LR in both formats, the lifecycle states declared in lifecycle order', () => {
      const dot = toDot(agentMachine);
      const mermaid = toMermaid(agentMachine);
      expect(dot).toContain('rankdir=LR;');
      expect(mermaid.split('\n')[1]).toBe('  direction LR');
      const found = LIFECYCLE.map(lifecycleState);
      expect(found.every(Boolean)).toBe(true); // all seven are there today; the renderer skips a missing one
      expect(graph.lifecycle).toEqual(found.map((n) => idOf(n!)));
      const mermaidAt = graph.lifecycle.map((id) => mermaid.indexOf(`state "${node(id).key}" as ${id} {`));
      const dotAt = graph.lifecycle.map((id) => dot.indexOf(`subgraph cluster_${id} {`));
      for (const at of [mermaidAt, dotAt]) {
        expect(at.every((i) => i >= 0)).toBe(true);
        expect([...at].sort((a, b) => a - b)).toEqual(at);
      }
      // DOT keeps the order with invisible edges from each lifecycle state into the next.
      for (let i = 1; i < graph.lifecycle.length; i++) {
        const [a, b] = [leavesOf(node(graph.lifecycle[i - 1])), leavesOf(node(graph.lifecycle[i]))];
        expect(dot).toContain(`  ${idOf(a[0])} -> ${idOf(b[0])} [style=invis`);
      }
    });

    (hasDot ? it : it.skip)('Graphviz lays the lifecycle states out left to right, without warnings', () => {
      const run = spawnSync('dot', ['-Tjson'], { input: toDot(agentMachine), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      expect(run.status).toBe(0);
      expect(run.stderr).toBe(''); // e.g. "tail not inside tail cluster": an edge drawn from the wrong place
      const objects = (JSON.parse(run.stdout) as { objects: { name: string; pos?: string; bb?: string }[] }).objects;
      const x = (name: string) => Number(objects.find((o) => o.name === name)!.pos!.split(',')[0]);
      const cluster = (id: string) => objects.find((o) => o.name === `cluster_${id}`)!.bb!.split(',').map(Number);
      for (let i = 1; i < graph.lifecycle.length; i++) {
        const [before, after] = [graph.lifecycle[i - 1], graph.lifecycle[i]];
        const rightmost = Math.max(...leavesOf(node(before)).map((l) => x(idOf(l))));
        const leftmost = Math.min(...leavesOf(node(after)).map((l) => x(idOf(l))));
        expect({ before, after, ordered: rightmost < leftmost }).toEqual({ before, after, ordered: true });
        const [b, a] = [cluster(before), cluster(after)];
        expect((b[0] + b[2]) / 2).toBeLessThan((a[0] + a[2]) / 2);
      }
    });
  });

  describe('each transition once, from the state that defines it', () => {
    it('every edge leaves the node whose own handler it is, never a leaf that only inherits it', () => {
      const ownLabels = (n: AnyStateNode) => [...n.transitions.keys()].map((type) => eventLabel(n, type)).concat(n.always?.length ? ['always'] : []);
      const strays = graph.edges.filter((e) => !ownLabels(node(e.from)).some((label) => e.label === label || e.label.startsWith(`${label} `)));
      expect(strays).toEqual([]);
    });

    it("the root's stops are drawn once, from `any state`, and a compound state's once from its border", () => {
      const rootStops = [...agentMachine.root.transitions].filter(([, ts]) => ts.some((t) => t.target?.length)).map(([type]) => type);
      expect(rootStops).toEqual(expect.arrayContaining(['SIGTERM', 'SPOT_INTERRUPTION', 'TIMEOUT', 'DISK_FULL', 'PANIC']));
      for (const stop of rootStops) {
        const target = idOf(agentMachine.root.transitions.get(stop)![0].target![0]);
        const drawn = graph.edges.filter((e) => e.label === stop && e.to === target);
        expect(drawn.filter((e) => e.from === graph.rootId)).toHaveLength(1);
        // Any other arrow for it is a state's own handler (draining's PANIC), not the root's copied down.
        expect(drawn.filter((e) => e.from !== graph.rootId && !node(e.from).transitions.has(stop))).toEqual([]);
      }
      expect(edges.filter((e) => e.endsWith(`->${at('reporting')}:SIGTERM`))).toEqual([`agent->${at('reporting')}:SIGTERM`]);
      expect(edges).not.toContain('downloading->reporting:SIGTERM');
      expect(edges).not.toContain('registering->reporting:SPOT_INTERRUPTION');
      // running handles SIGTERM itself: drawn from running, not from its leaves.
      expect(edges.filter((e) => e.endsWith(':SIGTERM') && e.includes(`->${at('draining')}:`))).toEqual([`${at('running')}->${at('draining')}:SIGTERM`]);

      const dot = toDot(agentMachine).split('\n');
      expect(dot.filter((l) => l.startsWith(`  ${graph.rootId} -> `) && l.includes('SIGTERM'))).toHaveLength(1);
      expect(dot.filter((l) => l.includes('SIGTERM') && l.includes(`ltail=cluster_${at('running')}`))).toHaveLength(1);
      expect(dot.filter((l) => / -> /.test(l) && l.includes('SIGTERM')).length).toBeLessThanOrEqual(3); // any state, booting, running
      const mermaid = toMermaid(agentMachine).split('\n');
      expect(mermaid.filter((l) => l.includes('-->') && l.includes('SIGTERM'))).toEqual([
        expect.stringMatching(/^ {2}agent --> reporting : .*SIGTERM/),
        expect.stringMatching(/^ {2}booting --> standbyEnded : .*SIGTERM/),
        expect.stringMatching(new RegExp(`^ {2}${at('running')} --> ${at('draining')} : .*SIGTERM`)),
      ]);
    });

    it('a state that takes a stop without leaving says so (the arrow from any state does not apply to it)', () => {
      expect(graph.staysOn.get(at('draining'))).toEqual(expect.arrayContaining(['SIGTERM', 'SPOT_INTERRUPTION', 'DISK_FULL']));
      expect(graph.staysOn.get('booting_standby_polling')).toEqual(['SIGTERM', 'TIMEOUT']);
      expect(graph.staysOn.has(at('running'))).toBe(false); // it moves on SIGTERM: an arrow, not a note
      expect(toDot(agentMachine)).toMatch(/label="draining\\nstays on [^"]*SIGTERM/);
    });

    it('few arrows into reporting', () => {
      const reporting = node(at('reporting'));
      const into = (list: Edge[]) => list.filter((e) => within(reporting, node(e.to)) && !within(reporting, node(e.from)));
      const arrows = toDot(agentMachine)
        .split('\n')
        .filter((l) => / -> /.test(l) && !l.includes('style=invis'))
        .filter((l) => new RegExp(`lhead=cluster_${reporting.path.join('_')}[,\\]]| -> ${reporting.path.join('_')}_\\w+ \\[`).test(l))
        .filter((l) => !l.startsWith(`  ${reporting.path.join('_')}_`));
      console.log(`edges into reporting: ${into(graph.edges).length} transitions, ${arrows.length} arrows in the DOT picture`);
      expect(into(graph.edges).length).toBeLessThan(25);
      expect(arrows.length).toBeLessThanOrEqual(into(graph.edges).length);
    });
  });

  describe('retries and deadlines are labelled loops', () => {
    it('every delay is drawn with its name, from the state that waits', () => {
      const all = [agentMachine.root, ...graph.nodes];
      const delays = all.flatMap((n) => n.after.map((t) => ({ from: idOf(n), label: `after ${String(t.delay)}` })));
      expect(delays.length).toBeGreaterThan(10);
      for (const d of delays) expect({ ...d, drawn: graph.edges.some((e) => e.from === d.from && e.label.startsWith(d.label)) }).toEqual({ ...d, drawn: true });
      // A deadline that only raises an event is a loop on its state.
      expect(edges).toContain('agent->agent:after maxRuntime / raise TIMEOUT');
      expect(graph.edges.some((e) => e.label === 'after reportDeadline' && e.to === at('terminating'))).toBe(true);
      expect(graph.edges.some((e) => /^after \w+$/.test(e.label) && e.to === at('reporting') && within(node(at('draining')), node(e.from)))).toBe(true);
    });

    it('attempt → backoff → attempt, labelled with the error, its guard and the delay', () => {
      const retrying = graph.nodes.filter((n) => n.states.attempt && n.states.backoff);
      expect(retrying.map(idOf)).toContain('downloading');
      const dot = toDot(agentMachine);
      for (const parent of retrying) {
        const [attempt, backoff] = [idOf(parent.states.attempt), idOf(parent.states.backoff)];
        const out = graph.edges.filter((e) => e.from === attempt && e.to === backoff).map((e) => e.label);
        const back = graph.edges.filter((e) => e.from === backoff && e.to === attempt).map((e) => e.label);
        expect({ parent: idOf(parent), out }).toEqual({ parent: idOf(parent), out: [expect.stringMatching(/^onError \w+ \[\w+\]$/)] });
        expect({ parent: idOf(parent), back }).toEqual({ parent: idOf(parent), back: [expect.stringMatching(/^after \w+$/)] });
        expect(dot).toContain(`  ${attempt} -> ${backoff} [label="${out[0]}"`);
        expect(dot).toContain(`  ${backoff} -> ${attempt} [label="${back[0]}"`);
      }
      expect(edges).toContain('downloading_attempt->downloading_backoff:onError downloadRunner [canRetryDownload]');
      expect(edges).toContain('downloading_backoff->downloading_attempt:after downloadBackoff');
    });
  });

  it('renders DOT with every leaf state once', () => {
    const dot = toDot(agentMachine);
    expect(dot).toMatch(/^digraph agent \{/);
    expect(dot.match(/\bfinished \[label="finished[^"]*", peripheries=2\]/g)).toHaveLength(1);
    for (const leaf of leavesOf(agentMachine.root).map(idOf)) {
      expect({ leaf, declared: (dot.match(new RegExp(`^\\s*${leaf} \\[label=`, 'gm')) ?? []).length }).toEqual({ leaf, declared: 1 });
    }
  });
});
