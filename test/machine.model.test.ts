/**
 * Model-based test of the agent machine (SPEC §1 invariants).
 *
 * 1. @xstate/graph's getAdjacencyMap walks the machine with every event each state
 *    can take (its own transitions, done/error of its actors, its delays, and every
 *    watchdog event), with a state serializer that keeps what the guards read.
 * 2. For EVERY edge of that map, a path = shortest path to the edge's source + the edge.
 * 3. Each path is replayed against the real machine (real actor, real timers on a
 *    SimulatedClock, fake actors that only settle when the path says so), checked
 *    step by step against the model, then driven to the end, where the invariants are
 *    asserted. The test fails if any edge was not walked.
 */
import { describe, expect, it } from '@jest/globals';
import { getAdjacencyMap } from '@xstate/graph';
import { createActor, SimulatedClock, type AnyStateNode, type EventObject } from 'xstate';
import { agentMachine, RETRY_POLICY } from '../machines/agent.machine.js';
import type { AgentContext } from '../machines/types.js';
import { prepareTelemetry } from '../services/aws/telemetry.js';
import { defaultOutputs, FakeActors, settle } from './support/fake-actors.js';

type Snapshot = ReturnType<typeof agentMachine.getInitialSnapshot>;

/** Every invoke id in the machine → the actor (src) it runs. */
const invokeSrc = new Map<string, string>();
(function collect(node: AnyStateNode) {
  for (const inv of node.invoke) invokeSrc.set(inv.id, String(inv.src));
  for (const child of Object.values(node.states)) collect(child);
})(agentMachine.root);

const retriable = Object.assign(new Error('HTTP 503 from GitHub'), { retriable: true });
const terminal = Object.assign(new Error('HTTP 404 from GitHub'), { retriable: false });
/** The three outcomes of a standby poll that are not the config (services/aws/ssm-config.ts). */
const POLL_ERRORS = [
  Object.assign(new Error('runner config /p is not in SSM yet'), { retriable: true, kind: 'not-found' }),
  Object.assign(new Error('could not read /p from SSM (ThrottlingException)'), { retriable: true, kind: 'read-error', throttled: true }),
  Object.assign(new Error('runner config /p is invalid: job_id: expected a decimal integer'), { retriable: false, kind: 'unusable', queueUrl: 'http://127.0.0.1:1/123456789012/q' }),
];

/** The events a snapshot can take: every event type its active nodes handle, with payload variants. */
function eventsFor(snapshot: Snapshot): EventObject[] {
  if (snapshot.status === 'done') return []; // a finished actor takes no event
  const types = new Set<string>();
  for (const node of snapshot._nodes) for (const type of node.transitions.keys()) types.add(type);
  const events: EventObject[] = [];
  const outputs = defaultOutputs() as Record<string, unknown>;
  for (const type of types) {
    // A compound state's onDone (terminating → finished) is the machine's own event, never sent from outside.
    if (type.startsWith('xstate.done.state.')) continue;
    if (type.startsWith('xstate.done.actor.')) {
      const src = invokeSrc.get(type.slice('xstate.done.actor.'.length))!;
      events.push({ type, output: outputs[src] } as EventObject);
    } else if (type.startsWith('xstate.error.actor.')) {
      if (invokeSrc.get(type.slice('xstate.error.actor.'.length)) === 'readRunnerConfig') {
        for (const error of POLL_ERRORS) events.push({ type, error } as EventObject);
        continue;
      }
      events.push({ type, error: retriable } as EventObject);
      // Retry loops (downloading's and the chart's `attempt → backoff` ones) tell the two apart.
      if (type.includes('downloading') || type.includes('.attempt')) events.push({ type, error: terminal } as EventObject);
    } else {
      switch (type) {
        case 'SIGTERM':
          events.push({ type, signal: 'SIGTERM' } as EventObject);
          break;
        case 'SPOT_INTERRUPTION':
          events.push({ type, action: 'terminate', time: new Date(Date.now() + 120_000).toISOString() } as EventObject);
          break;
        case 'DISK_FULL':
          events.push({ type, freeMb: 10, minFreeMb: 500 } as EventObject);
          break;
        case 'MEMORY_LOW':
          events.push({ type, availableMb: 50, minAvailableMb: 200 } as EventObject);
          break;
        case 'PANIC':
          events.push({ type, error: 'boom' } as EventObject);
          break;
        case 'JOB_STARTED':
          events.push({ type, jobName: 'build', at: '2026-01-01T00:00:00.000Z' } as EventObject);
          break;
        case 'JOB_COMPLETED':
          events.push({ type, jobName: 'build', result: 'Succeeded' } as EventObject);
          events.push({ type, jobName: 'build', result: 'Failed' } as EventObject);
          break;
        case 'RUNNER_EXITED':
          events.push({ type, exitCode: 0, signal: null } as EventObject);
          break;
        case 'RUNNER_FATAL':
          events.push({ type, reason: 'session-exists', line: 'A session for this runner already exists.' } as EventObject);
          break;
        case 'CACHE_UPLOAD_FINISHED':
          events.push({ type, outcome: 'uploaded' } as EventObject);
          break;
        case 'LOGS_FLUSHED':
          events.push({ type, shipped: 10, dropped: 0 } as EventObject);
          break;
        case 'RUNNER_SPAWNED':
          events.push({ type, pid: 4242 } as EventObject);
          break;
        case 'RUNNER_PREFETCHED':
          events.push({ type, runner: outputs.downloadRunner } as EventObject);
          break;
        case 'PREFETCH_FAILED':
          events.push({ type, failure: { message: 'HTTP 503 from GitHub', retriable: true } } as EventObject);
          events.push({ type, failure: { message: 'HTTP 404 from GitHub', retriable: false } } as EventObject);
          break;
        default:
          events.push({ type } as EventObject); // TIMEOUT, IDLE_TIMEOUT, RUNNER_LISTENING, xstate.after.*
      }
    }
  }
  return events;
}

/** State value plus exactly the context the guards read: two snapshots alike here behave alike. */
function serialize(snapshot: Snapshot): string {
  const c = snapshot.context as AgentContext;
  return JSON.stringify({
    value: snapshot.value,
    attempt: c.downloadAttempt,
    runnerExited: c.runnerExit !== undefined,
    identity: c.identity !== undefined,
    prefetch: c.prefetch,
    prefetchRetriable: c.prefetchError?.retriable,
    runnerReady: c.runner !== undefined,
    retries: c.retries,
  });
}
const serializeEvent = (event: EventObject) => JSON.stringify(event);

interface Step {
  event: EventObject;
  to: string;
}

interface Model {
  name: string;
  env: Record<string, string>;
}

const MODELS: Model[] = [
  { name: 'valid environment', env: {} },
  { name: 'a bad environment variable', env: { RUNS_FLEET_IDLE_TIMEOUT_MINUTES: 'soon' } },
  { name: 'RUNS_FLEET_TERMINATE=false', env: { RUNS_FLEET_TERMINATE: 'false' } },
];

function buildModel(model: Model) {
  const input = { env: model.env, now: () => 0 };
  const adjacency: Record<string, { state: unknown; transitions: Record<string, { event: EventObject; state: unknown }> }> = getAdjacencyMap(agentMachine, {
    input,
    events: eventsFor as never,
    serializeState: (s) => serialize(s as Snapshot),
    serializeEvent: serializeEvent as never,
  }) as never;
  // Shortest path (BFS) from the initial state to every state.
  const initial = Object.keys(adjacency)[0]!; // the traversal starts at the initial state
  const pathTo = new Map<string, Step[]>([[initial, []]]);
  const queue = [initial];
  while (queue.length > 0) {
    const from = queue.shift()!;
    for (const { event, state } of Object.values(adjacency[from]!.transitions)) {
      const to = serialize(state as Snapshot);
      if (!pathTo.has(to)) {
        pathTo.set(to, [...pathTo.get(from)!, { event, to }]);
        queue.push(to);
      }
    }
  }
  const edges: { key: string; path: Step[] }[] = [];
  for (const [from, { transitions }] of Object.entries(adjacency)) {
    for (const [eventKey, { event, state }] of Object.entries(transitions)) {
      edges.push({ key: `${from} --${eventKey}-->`, path: [...pathTo.get(from)!, { event, to: serialize(state as Snapshot) }] });
    }
  }
  return { adjacency, edges };
}

const WATCHER_OF: Record<string, string> = {
  SIGTERM: 'processWatcher',
  PANIC: 'processWatcher',
  SPOT_INTERRUPTION: 'spotWatcher',
  DISK_FULL: 'resourceMonitor',
  MEMORY_LOW: 'resourceMonitor',
  RUNNER_PREFETCHED: 'prefetchRunner',
  PREFETCH_FAILED: 'prefetchRunner',
  LOGS_FLUSHED: 'logShipper',
  CACHE_UPLOAD_FINISHED: 'uploadRunnerCache',
};
const RUNNER_EVENTS = new Set(['RUNNER_SPAWNED', 'RUNNER_LISTENING', 'JOB_STARTED', 'JOB_COMPLETED', 'RUNNER_EXITED', 'RUNNER_FATAL']);

/** Replay one path on the real machine, then finish the lifecycle; returns what invariants need. */
async function replay(model: Model, path: Step[]) {
  const fake = new FakeActors();
  fake.runner.exitOnStop = false; // the path decides when the runner exits
  const clock = new SimulatedClock();
  const actor = createActor(agentMachine.provide({ actors: fake.actors() }), {
    clock,
    input: { env: model.env, now: () => clock.now() },
    logger: () => {},
  });
  const visited: string[] = [];
  actor.subscribe((s) => visited.push(JSON.stringify(s.value)));
  actor.start();
  await settle();

  for (const [index, { event, to }] of path.entries()) {
    const type = event.type;
    if (type.startsWith('xstate.done.actor.') || type.startsWith('xstate.error.actor.')) {
      const done = type.startsWith('xstate.done.actor.');
      const id = type.slice(done ? 'xstate.done.actor.'.length : 'xstate.error.actor.'.length);
      const call = fake.take(invokeSrc.get(id) as never);
      if (done) call.resolve((event as { output?: unknown }).output);
      else call.reject((event as { error?: unknown }).error);
    } else if (type.startsWith('xstate.after.maxRuntime.') || type.startsWith('xstate.after.standbyDeadline.')) {
      // These count from agent start, so they can fall due in any state, even one whose own
      // short deadlines would fire first on a moving clock: deliver the timer's event itself.
      // (test/machine.test.ts checks the real timer on the clock.)
      actor.send(event as never);
    } else if (type.startsWith('xstate.after.')) {
      const delay = type.slice('xstate.after.'.length).split('.')[0]!;
      const impl = (agentMachine.implementations.delays as Record<string, unknown>)[delay];
      const ms =
        delay === 'downloadBackoff'
          ? 8_000 // the jittered delay's upper bound (the fakes' errors carry no Retry-After)
          : delay.endsWith('Backoff')
            ? 8_000 // the retry loops' jittered delays are at most this (RETRY_POLICY)
          : typeof impl === 'function'
            ? (impl as (a: { context: AgentContext }) => number)({ context: actor.getSnapshot().context })
            : Number(impl);
      clock.increment(ms + 1);
    } else if (RUNNER_EVENTS.has(type)) {
      fake.journal.push(`emit:${type}`);
      fake.runner.emit(event as never);
    } else if (WATCHER_OF[type] && fake.watchers[WATCHER_OF[type]!]?.active) {
      fake.watchers[WATCHER_OF[type]!]!.sendBack!(event as never);
    } else {
      actor.send(event as never);
    }
    await settle();
    const reached = serialize(actor.getSnapshot());
    if (reached !== to) {
      throw new Error(`step ${index + 1} (${type}): the machine reached ${reached}, the model expected ${to}`);
    }
  }

  // Finish the lifecycle the way a healthy world would.
  const finished = () => actor.getSnapshot().matches('finished') || actor.getSnapshot().matches('standbyEnded');
  for (let i = 0; i < 1000 && !finished(); i += 1) {
    const call = fake.pending.find((p) => !p.aborted);
    const snapshot = actor.getSnapshot();
    if (call) {
      fake.pending.splice(fake.pending.indexOf(call), 1);
      call.resolve((defaultOutputs() as Record<string, unknown>)[call.src]);
    } else if ((snapshot.matches({ reporting: 'flushingLogs' }) || snapshot.matches({ terminating: 'flushingLogs' })) && fake.watchers.logShipper?.active) {
      fake.watchers.logShipper.sendBack!({ type: 'LOGS_FLUSHED', shipped: 10, dropped: 0 });
    } else if (snapshot.matches({ downloading: 'awaitingPrefetch' }) && fake.watchers.prefetchRunner?.active) {
      fake.watchers.prefetchRunner.sendBack!({ type: 'RUNNER_PREFETCHED', runner: defaultOutputs().downloadRunner as never });
    } else if (snapshot.matches({ withRunner: { running: { confirmation: 'awaitingSpawn' } } }) && fake.runner.alive) {
      fake.journal.push('emit:RUNNER_SPAWNED');
      fake.runner.emit({ type: 'RUNNER_SPAWNED', pid: 4242 });
    } else if (fake.runner.alive) {
      fake.runner.emit({ type: 'RUNNER_EXITED', exitCode: 0, signal: null });
    } else {
      clock.increment(60_000);
    }
    await settle();
  }
  const snapshot = actor.getSnapshot();
  actor.stop();
  return { fake, snapshot, visited };
}

function assertInvariants(model: Model, result: Awaited<ReturnType<typeof replay>>) {
  const { fake, snapshot } = result;
  const context = snapshot.context as AgentContext;
  const journal = fake.journal;
  const attempts = fake.callsOf('sendTelemetry').map((input) => input.message);
  const messages = fake.succeeded('sendTelemetry').map((input) => input.message); // what the queue took
  const terminateCalls = fake.callsOf('terminateInstance').length;
  const terminations = fake.succeeded('terminateInstance').length;
  // 1. A standby that never got a config ends without TerminateInstances and without any message;
  //    every other path ends in terminating, with TerminateInstances requested (retried at most
  //    RETRY_POLICY.terminate.attempts times) and accepted at most once, never asked again once accepted.
  if (snapshot.matches('standbyEnded')) {
    expect(context.jobSpec).toBeUndefined();
    expect(terminateCalls).toBe(0);
    expect(attempts).toEqual([]);
    return;
  }
  expect(snapshot.matches('finished')).toBe(true);
  const mayTerminate = model.env.RUNS_FLEET_TERMINATE !== 'false' && context.identity !== undefined;
  if (mayTerminate) {
    expect(terminateCalls).toBeGreaterThanOrEqual(1);
    expect(terminateCalls).toBeLessThanOrEqual(RETRY_POLICY.terminate.attempts);
    expect(terminations).toBeLessThanOrEqual(1);
    const settledTerminations = fake.settled.filter((c) => c.src === 'terminateInstance');
    if (terminations === 1) expect(settledTerminations.at(-1)!.ok).toBe(true); // nothing after the accepted one
  } else expect(terminateCalls).toBe(0);
  // 2. The final message is attempted, bounded, and taken by the queue at most once; `started` at
  //    most once, and only once run.sh was spawned (after registering).
  const finalAttempts = attempts.filter((m) => m.status !== 'started');
  const finals = messages.filter((m) => m.status !== 'started');
  const starteds = messages.filter((m) => m.status === 'started');
  expect(finalAttempts.length).toBeGreaterThanOrEqual(1);
  expect(finalAttempts.length).toBeLessThanOrEqual(RETRY_POLICY.finalTelemetry.attempts);
  expect(finals.length).toBeLessThanOrEqual(1);
  expect(starteds.length).toBeLessThanOrEqual(1);
  expect(attempts.filter((m) => m.status === 'started').length).toBeLessThanOrEqual(RETRY_POLICY.startedTelemetry.attempts);
  //    Once the queue took the final message, no attempt follows; a healthy queue takes it.
  const finalOutcomes = fake.settled.filter((c) => c.src === 'sendTelemetry' && c.input.message.status !== 'started');
  if (finals.length === 1) expect(finalOutcomes.at(-1)!.ok).toBe(true);
  if (finalOutcomes.every((c) => c.ok) && finalOutcomes.length > 0) expect(finals).toHaveLength(1);
  if (attempts.some((m) => m.status === 'started')) {
    const startedAt = journal.findIndex((entry, i) => entry === 'call:sendTelemetry' && fake.calls.filter((c) => c.src === 'sendTelemetry')[journal.slice(0, i + 1).filter((e) => e === 'call:sendTelemetry').length - 1]?.input.message.status === 'started');
    expect(journal.indexOf('emit:RUNNER_SPAWNED')).toBeGreaterThan(-1);
    expect(journal.indexOf('emit:RUNNER_SPAWNED')).toBeLessThan(startedAt);
    expect(journal.indexOf('call:registerRunner')).toBeLessThan(startedAt);
  }
  expect(['success', 'failure', 'timeout', 'interrupted', 'bootstrap_failed']).toContain(finalAttempts[0].status);
  //    Every message decodes into the orchestrator's types: the schema the sender enforces, and a
  //    job_id on everything but bootstrap_failed (the only status the orchestrator takes without one).
  for (const message of attempts) {
    // Without an instance id the sender refuses the message (the orchestrator could not use it): it never leaves.
    if (message.instance_id === null) continue;
    const prepared = prepareTelemetry(message);
    expect(prepared.ok ? 'ok' : prepared.error).toBe('ok');
    if (message.status !== 'bootstrap_failed') expect(message.job_id).toMatch(/^\d+$/);
    expect(Number.isInteger(message.duration_seconds)).toBe(true);
  }
  // 3. Cleanup and log flush attempted before termination.
  const terminateAt = journal.indexOf('call:terminateInstance');
  expect(journal).toContain('call:cleanup');
  expect(journal).toContain('call:flushLogs');
  if (terminateAt >= 0) {
    expect(journal.indexOf('call:cleanup')).toBeLessThan(terminateAt);
    expect(journal.indexOf('call:flushLogs')).toBeLessThan(terminateAt);
  }
  // 4. The runner never outlives draining: stopped before the final report is sent.
  if (journal.includes('start:runner')) {
    const finalReportAt = journal.lastIndexOf('call:sendTelemetry');
    expect(journal.indexOf('stop:runner')).toBeGreaterThan(-1);
    expect(journal.indexOf('stop:runner')).toBeLessThan(finalReportAt);
  }
  // 5. No secret reaches the context or a telemetry message (the config actor keeps them in the vault).
  expect(JSON.stringify({ context: { ...context, now: undefined }, messages: attempts })).not.toContain('jit-secret');
}

describe('agent machine, model-based', () => {
  for (const model of MODELS) {
    it(`walks every edge with ${model.name}, invariants hold on every path`, async () => {
      const { adjacency, edges } = buildModel(model);
      const covered = new Set<string>();
      const failures: string[] = [];
      for (const edge of edges) {
        try {
          const result = await replay(model, edge.path);
          assertInvariants(model, result);
          covered.add(edge.key);
        } catch (error) {
          failures.push(`${edge.key}\n    ${(error as Error).message.split('\n').slice(0, 6).join('\n    ')}`);
        }
      }
      const states = Object.keys(adjacency).length;
      console.log(`[model: ${model.name}] ${states} states, ${edges.length} edges, ${edges.length} paths replayed, ${covered.size}/${edges.length} edges covered`);
      const kinds = new Map<string, number>();
      for (const f of failures) {
        const key = f.split('\n').slice(1).join(' ').replace(/\{[^}]*\}/g, '{}').slice(0, 160);
        kinds.set(key, (kinds.get(key) ?? 0) + 1);
      }
      if (kinds.size > 0) console.log([...kinds].map(([k, n]) => `${n} × ${k}`).join('\n'));
      expect(failures.slice(0, 5)).toEqual([]);
      expect(covered.size).toBe(edges.length);
    }, 600_000); // thousands of replays: minutes on a loaded 2-core machine, not a hang
  }

  it('reaches every state node of the machine', () => {
    const reached = new Set<string>();
    for (const model of MODELS) {
      const { adjacency } = buildModel(model);
      for (const { state } of Object.values(adjacency)) for (const node of (state as Snapshot)._nodes) reached.add(node.id);
    }
    const all: string[] = [];
    (function collect(node: AnyStateNode) {
      // Transient decision states (only eventless transitions, one unguarded) are passed through, never rested in.
      const transient = node.always?.some((t) => !t.guard) && node.invoke.length === 0;
      if (!transient) all.push(node.id);
      for (const child of Object.values(node.states)) collect(child);
    })(agentMachine.root);
    expect(all.filter((id) => !reached.has(id))).toEqual([]);
  });

  it('takes PANIC in every top-level state', () => {
    const { adjacency } = buildModel(MODELS[0]!);
    const panicFrom = new Set<string>();
    for (const { state, transitions } of Object.values(adjacency)) {
      if (Object.keys(transitions).some((k) => k.includes('"PANIC"'))) {
        const value = (state as Snapshot).value;
        const top = typeof value === 'string' ? value : Object.keys(value)[0]!;
        // withRunner only wraps running and draining (it owns the runner process): name those.
        panicFrom.add(top === 'withRunner' ? Object.keys((value as Record<string, object>).withRunner!)[0]! : top);
      }
    }
    expect([...panicFrom].sort()).toEqual(
      ['booting', 'downloading', 'draining', 'registering', 'reporting', 'running', 'terminating'].sort(),
    );
  });
});
