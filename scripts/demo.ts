/**
 * `make demo`: one full job through the built agent, locally.
 * moto stands in for AWS, fakes stand in for GitHub, IMDS and the runner. Nothing here can
 * touch the machine it runs on: the only TerminateInstances goes to moto's instance.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { agentMachine } from '../machines/agent.machine.js';
import { toDot } from '../machines/diagram.js';
import { renderTimelineSvg, type TimelineEntry } from '../bin/timeline.js';
import { createWorld } from '../test/support/agent-world.js';
import { orchestratorVerdicts, renderConfig } from '../test/support/orchestrator.js';

const TOKEN = 'demo-registration-token-0001';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

async function main() {
  console.log(bold('runs-fleet agent demo'));
  console.log('starting moto (AWS emulator), fake GitHub, fake IMDS…');
  const world = await createWorld({ runner: { behavior: 'lines', lines: 5, jobName: 'build-and-test', jobSeconds: 1 } });
  try {
    console.log(`instance ${world.instanceId} launched in moto`);
    console.log(`running: node dist/runs-fleet-agent.cjs run  (its environment as the fleet's bootstrap gives it: instance id and region)`);
    console.log(`the orchestrator (its Go mirror, test/contract/orchestrator) writes the runner config 3 s later, as it does after launch:`);
    console.log(`  ${world.credentialName} (the JIT config, gzip-packed) then ${world.parameterName}\n`);
    const agent = world.startAgent({ RUNS_FLEET_IDLE_TIMEOUT_MINUTES: '1', RUNS_FLEET_INSTANCE_ID: world.instanceId, AWS_REGION: 'us-east-1', RUNS_FLEET_TERMINATION_QUEUE_URL: undefined });
    // A JIT config of real size (a 2048-bit RSA key inside), minted like GitHub's, and a registration token.
    const jit = (await renderConfig({ runner_name: 'demo-runner' }, { realJit: true })).jit_config!;
    const written = await world.putConfigAsOrchestrator({ jit_config: jit, jit_token: TOKEN, runner_name: 'demo-runner' }, { delayMs: 3_000 });
    const run = await agent.done;
    console.log(`  config written at ${written.written_at} (JIT config ${written.jit_config_chars} chars, stored packed in ${written.credential_chars})`);
    for (const entry of run.logs) {
      if (entry.msg === 'state') console.log(`  → ${String(entry.state).padEnd(12)} ${entry.time}`);
    }
    console.log(run.stderr.trim());

    console.log(bold('\ntelemetry messages in the termination queue:'));
    for (const message of await world.telemetry()) console.log(`  ${JSON.stringify(message)}`);
    console.log(bold("as the orchestrator's termination handler reads them (its Go types):"));
    for (const { status, verdict } of await orchestratorVerdicts(world)) {
      console.log(`  ${status.padEnd(9)} → ${verdict.accepted ? 'accepted' : 'DROPPED'}: ${verdict.action}${verdict.result ? ` (${verdict.result})` : ''}${verdict.reason ? ` — ${verdict.reason}` : ''}`);
    }

    const events = await world.logEvents();
    console.log(bold(`\nCloudWatch Logs ${world.logGroup} / ${world.instanceId}/… (${events.length} events), the job's lines:`));
    for (const line of events.filter((l) => !l.startsWith('{')).slice(0, 20)) console.log(`  ${line}`);

    // Pictures: the timeline of this run and the state diagram (Graphviz), under out/ (git-ignored).
    // They never overwrite docs/: the committed state diagram is `make diagram`'s.
    const states = run.logs.filter((l) => l.msg === 'state').map((l) => ({ state: String(l.state), at: Date.parse(String(l.time)) }));
    const end = Date.parse(String(run.logs.find((l) => l.msg === 'lifecycle finished')?.time ?? new Date().toISOString()));
    const entries: TimelineEntry[] = states.map((s, i) => ({ state: s.state, startMs: s.at, endMs: states[i + 1]?.at ?? end }));
    mkdirSync('out', { recursive: true });
    writeFileSync('out/demo-timeline.svg', renderTimelineSvg(entries, `runs-fleet agent: one job, ${((end - (states[0]?.at ?? end)) / 1000).toFixed(2)} s`));
    const dot = spawnSync('dot', ['-Tsvg'], { input: toDot(agentMachine), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (dot.status === 0) writeFileSync('out/state-machine.svg', dot.stdout);
    console.log(bold('\npictures:'));
    console.log('  out/demo-timeline.svg (this run)');
    console.log(dot.status === 0 ? '  out/state-machine.svg (Graphviz)' : `  state diagram not rendered: ${dot.error?.message ?? dot.stderr}`);

    console.log(bold('\nresult:'));
    console.log(`  agent exit code: ${run.exitCode}`);
    console.log(`  EC2 instance ${world.instanceId}: ${await world.instanceState()}`);
    console.log(`  SSM parameters still there: config ${await world.parameterExists()}, credential ${await world.parameterExists(world.credentialName)}`);
    const leaked = [jit, TOKEN].some((secret) => run.stdout.includes(secret) || run.stderr.includes(secret) || events.some((l) => l.includes(secret)));
    console.log(`  a credential visible in any output: ${leaked}`);
    if (run.exitCode !== 0 || leaked) process.exitCode = 1;
  } finally {
    await world.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
