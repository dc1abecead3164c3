/**
 * runs-fleet-agent command line (SPEC §2). The one place that decides the exit code,
 * from the machine's outcome.
 *
 *   runs-fleet-agent run [--inspect[=PORT]]
 *   runs-fleet-agent diagram [--format mermaid|dot]
 *   runs-fleet-agent check-config
 *   runs-fleet-agent --version | --help
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createActor, waitFor, type AnyActorRef, type InspectionEvent, type StateValue } from 'xstate';
import { createActors, factsMetadataClient } from '../actors/index.js';
import { agentMachine, unitBudgetWarnings } from '../machines/agent.machine.js';
import { toDot, toMermaid } from '../machines/diagram.js';
import type { AgentOutcome } from '../machines/types.js';
import { createAwsClients } from '../services/aws/clients.js';
import { StdoutEcho } from '../services/logs/echo.js';
import { createLogger, LogRoute } from '../services/logs/logger.js';
import { RunnerReaper } from '../services/runner/reaper.js';
import { SecretVault } from '../services/secrets.js';
import { MAX_TIMER_MS, parseSettings, type Env, type Settings } from '../services/settings.js';
import { collect, holdYoungGeneration, releaseYoungGeneration, scheduleHeapReduction } from './heap.js';
import { renderTimeline, type TimelineEntry } from './timeline.js';
import { AGENT_VERSION } from './version.js';

/** `--inspect` alone (bin/inspector.ts imports too much to load for this constant). */
const DEFAULT_INSPECT_PORT = 8080;

const HELP = `runs-fleet-agent ${AGENT_VERSION} — one GitHub Actions job on one EC2 instance, then terminate.

Usage:
  runs-fleet-agent run [--inspect[=PORT]]        run the lifecycle (default command)
  runs-fleet-agent diagram [--format mermaid|dot] print the state diagram
  runs-fleet-agent check-config                  validate the environment, print it (secrets masked)
  runs-fleet-agent cache-runner [--version V] [--arch x64,arm64]
                                                 fill the S3 runner cache and its checksum manifest
                                                 (operator only: where GitHub is reachable)
  runs-fleet-agent --version | --help

Configuration is read from RUNS_FLEET_* and AWS_* environment variables; see docs/operations.md.
Exit code: 0 when TerminateInstances was requested (or RUNS_FLEET_TERMINATE=false and the
lifecycle finished), 1 otherwise.
`;

export interface CliIo {
  env: Env;
  out: (text: string, encoding?: 'latin1') => void;
  err: (text: string) => void;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [command = 'run', ...rest] = argv;
  switch (command) {
    case '--version':
    case '-v':
    case 'version':
      io.out(`${AGENT_VERSION}\n`);
      return 0;
    case '--help':
    case '-h':
    case 'help':
      io.out(HELP);
      return 0;
    case 'diagram': {
      const parsed = parse(rest, { format: { type: 'string', default: 'mermaid' } }, io);
      if (!parsed) return 2;
      const format = parsed.format as string;
      if (format !== 'mermaid' && format !== 'dot') {
        io.err(`unknown diagram format "${format}" (use mermaid or dot)\n`);
        return 2;
      }
      io.out(format === 'dot' ? toDot(agentMachine) : toMermaid(agentMachine));
      return 0;
    }
    case 'check-config':
      return checkConfig(io);
    case 'cache-runner':
      return cacheRunnerCommand(rest, io);
    case 'run': {
      // `--inspect` takes an optional port: parseArgs wants a value, so the bare flag gets the default.
      const options = parse(rest.map((a) => (a === '--inspect' ? `--inspect=${DEFAULT_INSPECT_PORT}` : a)), { inspect: { type: 'string' } }, io);
      if (!options) return 2;
      const inspect = options.inspect as string | undefined;
      if (inspect !== undefined && !/^\d{1,5}$/.test(inspect)) {
        io.err(`--inspect takes a port number, not "${inspect}"\n`);
        return 2;
      }
      return run(inspect === undefined ? undefined : Number(inspect), io);
    }
    default:
      io.err(`unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

/** A command's options with node:util's parseArgs (strict: an unknown option is an error, exit 2). */
function parse(args: string[], options: ParseArgsConfig['options'], io: CliIo): Record<string, string | boolean | undefined> | undefined {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${HELP}`);
    return undefined;
  }
}

/** The operator's cache filler (services/install/cache-runner.ts): RUNS_FLEET_CONFIG_BUCKET, AWS_REGION, the GitHub API. */
async function cacheRunnerCommand(args: string[], io: CliIo): Promise<number> {
  const options = parse(args, { version: { type: 'string' }, arch: { type: 'string', default: 'x64,arm64' } }, io);
  if (!options) return 2;
  const { settings, errors } = parseSettings(io.env);
  const version = (options.version as string | undefined) ?? settings.runnerVersion;
  const arches = (options.arch as string).split(',').map((a) => a.trim());
  const bad = arches.filter((a) => a !== 'x64' && a !== 'arm64');
  if (errors.length > 0 || !settings.configBucket || bad.length > 0) {
    for (const error of errors) io.err(`error: ${error}\n`);
    if (!settings.configBucket) io.err('error: RUNS_FLEET_CONFIG_BUCKET names the bucket to fill\n');
    if (bad.length > 0) io.err(`error: --arch takes x64 and/or arm64, not ${bad.join(', ')}\n`);
    return 2;
  }
  const aws = createAwsClients(io.env, settings.region);
  try {
    const [{ RunnerCache }, { cacheRunner }] = await Promise.all([import('../services/install/s3-cache.js'), import('../services/install/cache-runner.js')]);
    const manifest = await cacheRunner({
      cache: new RunnerCache(await aws.s3(settings.region), settings.configBucket),
      githubApiUrl: settings.githubApiUrl,
      version,
      arches: arches as ('x64' | 'arm64')[],
      log: (line) => io.out(`${line}\n`),
    });
    io.out(`${JSON.stringify(manifest)}\n`);
    return 0;
  } catch (error) {
    io.err(`cache-runner failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    aws.destroy();
  }
}

/** How long check-config looks for the newest runner version (S3 listing, then GitHub) before saying it could not tell. */
const PIN_CHECK_TIMEOUT_MS = 3_000;

async function checkConfig(io: CliIo): Promise<number> {
  // The machine parses the environment (its initial context): the same reading as `run`.
  const { settings, settingErrors: errors } = createActor(agentMachine, { input: { env: io.env } }).getSnapshot().context;
  const warnings = unitBudgetWarnings(settings);
  const runnerVersionCheck = await checkRunnerVersionPin(settings, io.env);
  if (runnerVersionCheck.warning) warnings.push(runnerVersionCheck.warning);
  io.out(`${JSON.stringify({ version: AGENT_VERSION, settings, errors, warnings, runnerVersionCheck: runnerVersionCheck.notes }, null, 2)}\n`);
  for (const warning of warnings) io.err(`warning: ${warning}\n`);
  for (const error of errors) io.err(`error: ${error}\n`);
  return errors.length > 0 ? 1 : 0;
}

/** A pinned runner version below the newest one visible (the S3 cache's listing, else GitHub) is a warning; offline is neither. */
async function checkRunnerVersionPin(settings: Settings, env: Env): Promise<{ warning?: string; notes: string[] }> {
  const { checkRunnerPin, newestCachedVersion, newestGithubVersion } = await import('../services/install/runner-versions.js');
  const bucket = settings.configBucket;
  const aws = createAwsClients(env, settings.region);
  try {
    return await checkRunnerPin({
      pinned: settings.runnerVersion,
      cachedVersion: bucket
        ? async () => {
            // On an instance AWS_REGION is usually unset (the agent asks IMDS): ask it too, briefly, for the listing.
            const region = settings.region ?? (await imdsRegion());
            return newestCachedVersion(await aws.s3(region), bucket, AbortSignal.timeout(PIN_CHECK_TIMEOUT_MS));
          }
        : undefined,
      githubVersion: () => newestGithubVersion(settings.githubApiUrl, AbortSignal.timeout(PIN_CHECK_TIMEOUT_MS)),
    });
  } finally {
    aws.destroy();
  }
}

/** This instance's region from IMDS (one short try), or undefined off EC2. */
async function imdsRegion(): Promise<string | undefined> {
  try {
    return (await factsMetadataClient().request('latest/meta-data/placement/region', {})).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** How long after start the process gives up on everything and exits non-zero (systemd then powers off). */
function hardDeadlineMs(settings: Settings): number {
  const sum = settings.maxRuntimeMs + settings.drainGraceMs + 2 * settings.logFlushTimeoutMs + settings.reportTimeoutMs + settings.terminateTimeoutMs + 180_000;
  return Math.min(sum, MAX_TIMER_MS); // the settings' maxima keep it far below; never let a timer fire at once
}

async function run(inspectPort: number | undefined, io: CliIo): Promise<number> {
  // Here, not first in the bundle: once a V8 flag differs from its default, every Node built-in
  // loaded from then on compiles without its code cache, and the bundle loads most at its start.
  holdYoungGeneration();
  const vault = new SecretVault();
  // The logger's lines (and the runner's) reach the log shipper through this route, which the
  // shipper's actor attaches to; until then they wait in it.
  const route = new LogRoute();
  // Runner lines go to the agent's stdout (journald) as JSON, beside CloudWatch's runner stream,
  // batched and bounded (services/logs/echo.ts); the agent's own lines go through the same echo,
  // which keeps the two in order.
  const echo = new StdoutEcho({ write: io.out });
  // A batch still waiting when the process exits another way (a fatal error, the hard deadline) is written first.
  process.once('exit', () => echo.flush());
  const logger = createLogger({ vault, route, write: (line) => echo.write(line) });
  const aws = createAwsClients(io.env);

  // A signal's default action must never end the agent before it decided its exit code: the
  // machine's process watcher handles SIGTERM/SIGINT while it runs, and these keep the
  // disposition ours until run() returns (a late signal during the last cleanup changes nothing).
  const ignoreLateSignal = (signal: NodeJS.Signals) => logger.debug({ signal }, 'signal received while finishing');
  process.on('SIGTERM', ignoreLateSignal);
  process.on('SIGINT', ignoreLateSignal);

  let inspector: { stop(): Promise<void> } | undefined;
  let inspect: ((event: InspectionEvent) => void) | undefined;
  if (inspectPort !== undefined) {
    const { startInspector } = await import('./inspector.js');
    const started = await startInspector({ port: inspectPort, logger, announce: io.err, secret: (name, value) => vault.set(name, value) });
    inspector = started;
    inspect = (event) => started.inspect.next?.(event);
  }

  // Every microstep, not only every settled snapshot: a state passed through in one
  // macrostep (draining after the runner already exited) is still logged and timed.
  const timeline: TimelineEntry[] = [];
  let previous = '';
  let root: AnyActorRef | undefined;
  const onInspection = (event: InspectionEvent) => {
    inspect?.(event);
    if (event.type !== '@xstate.microstep' || event.actorRef !== root) return;
    const value = (event.snapshot as unknown as { value: StateValue }).value;
    const detail = stateDetail(value);
    if (detail === previous || detail === 'finished') return; // finished: the outcome, logged below
    previous = detail;
    const top = detail.split('.')[0]!;
    const now = Date.now();
    const last = timeline[timeline.length - 1];
    if (last?.state !== top) {
      if (last) last.endMs = now;
      timeline.push({ state: top, startMs: now, endMs: now });
      logger.info({ state: top, detail, event: event.event.type }, 'state');
      // Start-up is over once run.sh runs: give its memory back for the job's whole life (bin/heap.ts).
      if (top === 'running') {
        releaseYoungGeneration();
        scheduleHeapReduction();
      }
    } else {
      logger.debug({ state: top, detail, event: event.event.type }, 'state');
    }
  };

  // Runner lines are echoed directly, not through the logger, so they are not shipped a second time as agent lines.
  const echoRunnerLine = (line: string, timestampMs: number, stream: 'stdout' | 'stderr') => echo.runnerLine(line, timestampMs, stream);
  const reaper = new RunnerReaper();
  reaper.start();
  const machine = agentMachine.provide({ actors: createActors({ logger, vault, aws, route, echoRunnerLine, reaper, agentVersion: AGENT_VERSION, reclaimMemory: collect }) });
  const actor = createActor(machine, {
    input: { env: io.env, bootUptimeSeconds: readUptimeSeconds() },
    logger: (...parts: unknown[]) => logger.info(parts.map(String).join(' ')),
    inspect: onInspection,
  });
  root = actor;
  actor.subscribe({ error: (error) => logger.error({ err: error }, 'agent machine failed') });
  // The machine parsed the settings (its context); the command line only reads them.
  const { settings } = actor.getSnapshot().context;
  for (const warning of unitBudgetWarnings(settings)) logger.warn(warning);

  // Last line of defence inside the process: whatever hangs, exit non-zero in time.
  const deadline = setTimeout(() => {
    logger.fatal({ deadline_ms: hardDeadlineMs(settings) }, 'hard deadline reached: exiting so systemd powers off');
    process.exit(1);
  }, hardDeadlineMs(settings));

  logger.info({ version: AGENT_VERSION, pid: process.pid }, 'runs-fleet-agent starting');
  actor.start();
  let code: 0 | 1 = 1;
  try {
    const done = await waitFor(actor, (s) => s.status !== 'active', { timeout: Infinity });
    if (done.status !== 'done') throw done.error;
    const outcome = done.output as AgentOutcome;
    code = outcome.exitCode;
    const last = timeline[timeline.length - 1];
    if (last) last.endMs = Date.now();
    logger.info({ ...outcome, timings: done.context.timings, runner_lines_not_echoed: echo.notEchoed }, 'lifecycle finished');
    echo.flush(); // stdout's lines before stderr's timeline
    io.err(`\nruns-fleet-agent timeline (${outcome.status}, exit ${code}):\n${renderTimeline(timeline)}\n`);
  } catch (error) {
    logger.error({ err: error }, 'lifecycle did not finish');
  } finally {
    echo.flush();
    actor.stop();
    reaper.stop();
    clearTimeout(deadline);
    await inspector?.stop().catch(() => {});
    aws.destroy();
    process.off('SIGTERM', ignoreLateSignal);
    process.off('SIGINT', ignoreLateSignal);
  }
  return code;
}

/** Seconds since the machine booted (/proc/uptime): `bootstrap_boot_seconds`. Undefined off Linux. */
function readUptimeSeconds(): number | undefined {
  try {
    const value = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    return Number.isFinite(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `booting.standby.polling`, `running.job.jobRunning`, …: the path of the first active state,
 * from its lifecycle state down. `withRunner` only wraps running and draining (it owns the
 * runner process), so it is left out: the log names the seven lifecycle states of SPEC §1.
 */
export function stateDetail(value: StateValue): string {
  if (typeof value === 'string') return value;
  const [key, inner] = Object.entries(value)[0]!;
  if (key === 'withRunner' && inner !== undefined) return stateDetail(inner);
  return inner === undefined ? key : `${key}.${stateDetail(inner)}`;
}
