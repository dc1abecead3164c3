import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { agentMachine } from '../machines/agent.machine.js';
import { renderStateMachineDoc } from '../machines/diagram-doc.js';
import { machineGraph, toDot, toMermaid } from '../machines/diagram.js';

describe('state diagram', () => {
  it('docs/state-machine.md is generated from the current machine (run `make diagram` when this fails)', () => {
    expect(readFileSync('docs/state-machine.md', 'utf8')).toBe(renderStateMachineDoc());
  });

  it('draws every top-level state and the main lifecycle edges', () => {
    const mermaid = toMermaid(agentMachine);
    expect(mermaid.startsWith('stateDiagram-v2\n')).toBe(true);
    for (const state of ['booting', 'downloading', 'registering', 'running', 'draining', 'reporting', 'terminating']) {
      expect(mermaid).toContain(`state "${state}" as ${state}`);
    }
    const edges = machineGraph(agentMachine).edges.map((e) => `${e.from}->${e.to}:${e.label}`);
    expect(edges).toContain('booting_validated->downloading:always');
    expect(edges).toContain('downloading_attempt->registering:onDone downloadRunner');
    expect(edges).toContain('registering_registeringRunner->registering_preparingJob:onDone registerRunner');
    expect(edges).toContain('registering_preparingJob->running:onDone prepareJob');
    expect(edges).toContain('booting_standby_polling->booting_validated:onDone readRunnerConfig');
    expect(edges).toContain('booting_standby_waiting->standbyEnded:after standbyDeadline');
    expect(edges).toContain('booting_standby_polling->reporting:onDone readRunnerConfig [standbyStopRequested]'); // a stop during the poll that found a config
    expect(edges).toContain('booting->standbyEnded:SIGTERM');
    expect(edges.filter((e) => e.startsWith('standbyEnded->'))).toEqual([]);
    expect(edges).toContain('running->draining:SIGTERM');
    expect(edges).toContain('draining->reporting:RUNNER_EXITED');
    expect(edges).toContain('reporting_flushingLogs->reporting_sending:onDone flushLogs');
    expect(edges).toContain('reporting_sending->terminating:onDone sendTelemetry');
    // Root SIGTERM applies to downloading, but running overrides it with its own transition.
    expect(edges).toContain('downloading->reporting:SIGTERM');
    expect(edges).not.toContain('running->reporting:SIGTERM');
  });

  it('renders DOT with every leaf state once', () => {
    const dot = toDot(agentMachine);
    expect(dot).toMatch(/^digraph agent \{/);
    expect(dot.match(/terminating_done \[label="done", peripheries=2\]/g)).toHaveLength(1);
  });
});
