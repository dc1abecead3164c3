/**
 * Log-shipping benchmark (issue 5), with the REAL built agent (`dist/runs-fleet-agent.cjs`):
 * the world harness (moto, fake GitHub, fake IMDS, fake runner) runs one fake job that
 * prints N lines of 100 bytes as fast as it can, and the agent ships them to moto's
 * CloudWatch Logs.
 *
 *   node scripts/run-ts.mjs bench/logs.ts [--lines 1000000] [--rounds 5] [--no-double] [--no-sink]
 *                                         [--flush-seconds 60] [--agent path.cjs] [--agent-node-flags "..."]
 *                                         [--baseline earlier.cjs]   (or BENCH_BASELINE_BUNDLE; BENCH_ROUNDS)
 *                                         [--cases off,on,small] [--no-readback]  (investigation: a profile of one case)
 *
 * Primary figure (issue 15): the agent's CPU seconds per 100 MB of runner output, from
 * /proc/PID/stat: a flood run's CPU minus a 10,000-line run's (the lifecycle's own cost: start-up,
 * IMDS, SSM, download, EC2 at the end), scaled to 100 MB. Second: the job's wall time against the
 * same job without an agent (`seq ... | cat > /dev/null`). moto is pinned to the last CPU with
 * taskset, its CPU reported apart. A baseline bundle runs alternated for before/after figures.
 * The agent runs with the unit's `Environment=` (glibc tunables), as on an instance.
 *   node bench/logs.mjs [same options]          (the same, through scripts/run-ts.mjs)
 *
 * Build the agent first (`node scripts/build.mjs`): the bench runs what is in dist/.
 *
 * The job. The fake runner's `lines` job prints `line 1`..`line N` (~10 bytes a line); the
 * issue asks for ~100 MB per million lines, so the bench serves (from its own fake GitHub) a
 * copy of the fake runner whose job prints `line 0000001 xxx…` (99 characters and a newline,
 * with `seq`) and records, in nanoseconds, when it starts and when its last line has been
 * written into the agent's pipe (`_diag/bench-job-{start,end}`).
 *
 * Measured, per agent run:
 * - job wall time: those two job-side timestamps. The job blocks whenever the agent does not
 *   read its pipe fast enough, so this is how long the job really took under the agent. (The
 *   agent's own stdout cannot time it: see "stdout" below.) The agent's `running` state, from
 *   its timeline on stderr, is printed beside it.
 * - peak RSS: max of VmHWM/VmRSS in /proc/<agent pid>/status, polled every 100 ms until exit.
 * - CPU seconds of the agent and of moto over the run (/proc/<pid>/stat).
 * - delivered: GetLogEvents on the runner stream `{instance-id}/{run-id}` from the head,
 *   counting the job's lines that arrive in order (`line 0000001`, `line 0000002`, ...).
 *
 * Cases: shipping off (RUNS_FLEET_LOG_GROUP unset), on, and a small job, alternated `--rounds` times at N
 * lines (medians), on at 2N (RSS flatness), and — diagnostic — on with CloudWatch Logs pointed
 * at a null endpoint inside this process, which answers every call at once and parses nothing:
 * the agent's own cost of shipping without moto's CPU use (moto shares the same CPUs; the real
 * service does not).
 *
 * The flush deadline (RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS) is 60 s here, not the production
 * 10 s (--flush-seconds to change it). moto on its one CPU takes ~11 s of CPU for 100 MB, about
 * 14 s of wall time, so with 10 s the delivered figure measured moto's speed against the job's:
 * the faster the agent let the job finish, the more moto still had to take at the deadline
 * (measured with 10 s: one build dropped 0, 77,331 and 337,359 of 1,000,000 lines in three runs). What
 * is not delivered by the deadline is still dropped and counted. How long shipping went on
 * after the job (moto's backlog) is printed beside it.
 *
 * stdout. The agent echoes every runner line as a JSON line on its stdout (for journald). The
 * bench reads that stdout as fast as it comes and scans it only for the job's last line; when
 * the agent's stdout falls behind, the agent queues the echo in memory and loses what is queued
 * when it exits ("stdout echo cut short").
 *
 * Prints one `key=value` line per figure at the end.
 */
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as createTar, extract as extractTar } from 'tar';
import { unitEnvironment, UNIT_FILE } from './unit-env.js';
import { AGENT_BUNDLE, createWorld, JIT_SECRET, RUN_ID, RUNNER_VERSION, type World } from '../test/support/agent-world.js';
import { startFakeGitHub, type FakeGitHub } from '../test/support/fake-github.js';
import { buildFakeRunnerTarball } from '../test/support/fake-runner.js';
import { startMoto, type Moto } from '../test/support/moto.js';
import { median } from './stats.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1]!;
}
const LINES = Number(arg('--lines', '1000000'));
const ROUNDS = Math.max(1, Number(arg('--rounds', process.env.BENCH_ROUNDS ?? '5')));
const FLUSH_SECONDS = arg('--flush-seconds', '60');
const DOUBLE = !process.argv.includes('--no-double');
const SINK = !process.argv.includes('--no-sink');
/** For investigation (a profile of one case): which of the alternated cases run, and whether delivery is read back. */
const CASES = new Set(arg('--cases', 'off,on,small').split(','));
const READBACK = !process.argv.includes('--no-readback');
/** For investigation: the agent's CPU on its main thread and on the others (V8's GC and compiler workers, libuv's pool) at its exit, and after which of its log lines its peak RSS rose. */
const THREADS = process.argv.includes('--threads');

function threadCpu(pid: number): Map<string, number> | undefined {
  try {
    const byName = new Map<string, number>();
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : 'other threads';
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byName.set(name, (byName.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    }
    return byName;
  } catch {
    return undefined;
  }
}
/** Another agent bundle than dist/ (for investigation: a variant built to tell costs apart). */
const AGENT = arg('--agent', AGENT_BUNDLE);
/** A baseline bundle (an earlier build) run alternated with AGENT in the same invocation: before/after figures. */
const BASELINE = arg('--baseline', process.env.BENCH_BASELINE_BUNDLE ?? '');
/** Lines of the small job whose CPU is subtracted: what a flood costs beyond the lifecycle itself. */
const SMALL_LINES = 10_000;
/** The agent runs with the unit's `Environment=` (glibc tunables), as on an instance. */
const UNIT_ENV = unitEnvironment(process.env.BENCH_AGENT_UNIT ?? UNIT_FILE);

/** Extra node flags for the agent process, for investigation (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). */
const AGENT_NODE_FLAGS = arg('--agent-node-flags', '').split(' ').filter(Boolean);
const PAD = 'x'.repeat(86);
const JOB_LINE = /^line (\d{7}) x{86}$/;

type Shipping = 'off' | 'moto' | 'sink';

interface RunResult {
  label: string;
  lines: number;
  shipping: Shipping;
  exitCode: number | null;
  /** The job's own wall time (first line to last line written). */
  jobMs: number;
  /** The `running` state's duration from the agent's timeline (stderr): run.sh start to its output fully read. */
  runningMs: number;
  /** From the job's end to the agent's exit: flush, report, terminate. */
  afterJobMs: number;
  peakRssMb: number;
  /** Whether the agent's stdout carried the echo of the job's last line (its stdout queue is cut at exit). */
  echoedEnd: boolean;
  /** CPU seconds of the agent (sampled up to 100 ms before its exit) and of moto, over the agent's run. */
  agentCpuS: number;
  /** Of which in the kernel (system time). */
  agentSysS: number;
  motoCpuS: number;
  telemetry?: { shipped?: number; dropped?: number; status?: string };
  delivered?: { inOrder: number; outOfOrder: number; events: number; readMs: number };
}

/** The fake runner, its job printing 100-byte lines and timing itself. */
async function wideLineRunnerTarball(lines: number): Promise<Buffer> {
  const stock = await buildFakeRunnerTarball({ version: RUNNER_VERSION, behavior: 'lines', lines });
  const dir = mkdtempSync(join(tmpdir(), 'bench-logs-runner-'));
  try {
    writeFileSync(join(dir, 'stock.tar.gz'), stock);
    const tree = join(dir, 'tree');
    mkdirSync(tree);
    await extractTar({ file: join(dir, 'stock.tar.gz'), cwd: tree });
    const listener = join(tree, 'bin/Runner.Listener');
    const script = readFileSync(listener, 'utf8');
    const stockJob = `seq -f 'line %.0f' 1 "$(cfg lines 10)"`;
    if (!script.includes(stockJob)) throw new Error(`the fake runner's lines job changed: cannot find ${stockJob}`);
    const job = `{ date +%s%N > "$ROOT/_diag/bench-job-start"; seq -f 'line %07.0f ${PAD}' 1 "$(cfg lines 10)"; date +%s%N > "$ROOT/_diag/bench-job-end"; }`;
    writeFileSync(listener, script.replace(stockJob, job));
    const pack = createTar({ gzip: true, cwd: tree, portable: true }, ['.']);
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A CloudWatch Logs endpoint that accepts everything at once and parses nothing (diagnostic). */
async function startNullEndpoint(): Promise<{ endpoint: string; server: Server }> {
  const server = createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** Calls `onLine` for the lines of the agent's stdout that end the job; drops everything else. */
function jobEndScanner(onLine: (line: string) => void) {
  let carry = '';
  const needle = 'completed with result';
  return (chunk: Buffer) => {
    const text = carry + chunk.toString('utf8');
    const end = text.lastIndexOf('\n');
    carry = end === -1 ? text : text.slice(end + 1);
    for (let i = text.indexOf(needle); i !== -1 && i < end; i = text.indexOf(needle, i + 1)) {
      const stop = text.indexOf('\n', i);
      onLine(text.slice(text.lastIndexOf('\n', i) + 1, stop));
      i = stop;
    }
  };
}

/** CPU seconds (user + system) a process used so far, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuSeconds(pid: number | undefined, only?: 'sys'): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((only === 'sys' ? 0 : Number(fields[11])) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The moto server's pid (for its CPU use), found by its command line. */
function motoPid(moto: Moto): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd.includes('moto.server') && cmd.includes(String(moto.port))) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

function memoryKb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return Math.max(kb('VmHWM'), kb('VmRSS'));
  } catch {
    return 0;
  }
}

async function runAgent(world: World, github: FakeGitHub, label: string, lines: number, shipping: Shipping, env: Record<string, string | undefined>, moto: number | undefined, agent: string): Promise<RunResult> {
  const agentEnv = world.env({
    RUNS_FLEET_GITHUB_API_URL: github.apiUrl,
    RUNS_FLEET_GITHUB_URL: github.webUrl,
    RUNS_FLEET_LOG_GROUP: shipping === 'off' ? undefined : world.logGroup,
    RUNS_FLEET_MAX_RUNTIME_MINUTES: '20',
    RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS: FLUSH_SECONDS,
    RUNS_FLEET_REPORT_TIMEOUT_SECONDS: '30',
    ...env,
  });
  const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, agent, 'run'], { env: agentEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let echoed = false;
  const scan = jobEndScanner((line) => {
    if (line.includes('"msg":"runner"')) echoed = true;
  });
  /** The agent's warnings and errors (not the runner's lines), for a failed run's message. */
  let problems = '';
  let state = 'start';
  child.stdout!.on('data', (chunk: Buffer) => {
    scan(chunk);
    if (THREADS) {
      // The agent's own last line (not the runner's): where its RSS rose, to the nearest line.
      for (const m of chunk.toString('latin1').matchAll(/"msg":"([^"]{1,60})"/g)) if (m[1] !== 'runner') state = m[1]!;
    }
    if (problems.length < 8000 && (chunk.includes('"level":"warn"') || chunk.includes('"level":"error"') || chunk.includes('lifecycle finished'))) {
      for (const l of chunk.toString('utf8').split('\n')) {
        if ((/"level":"(warn|error)"/.test(l) || l.includes('lifecycle finished')) && !l.includes('"msg":"runner"')) problems += `${l.slice(0, 600)}\n`;
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8000)));
  let peakKb = 0;
  let agentCpu = 0;
  let agentSys = 0;
  let threads: Map<string, number> | undefined;
  const motoCpu0 = cpuSeconds(moto);
  const rise = new Map<string, number>();
  const poll = setInterval(() => {
    if (THREADS && !rise.has(state)) rise.set(state, 0); // keep first-seen order
    const kb = memoryKb(child.pid!);
    if (THREADS && kb > peakKb && peakKb > 0) rise.set(state, (rise.get(state) ?? 0) + kb - peakKb);
    peakKb = Math.max(peakKb, kb);
    const cpu = cpuSeconds(child.pid);
    if (!Number.isNaN(cpu)) agentCpu = cpu;
    const sys = cpuSeconds(child.pid, 'sys');
    if (!Number.isNaN(sys)) agentSys = sys;
    if (THREADS) threads = threadCpu(child.pid!) ?? threads;
  }, THREADS ? 20 : 100);
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const exitedAt = Date.now();
  clearInterval(poll);
  if (threads) console.log(`    ${label} agent CPU by thread: ${[...threads].map(([name, cpu]) => `${name} ${cpu.toFixed(2)} s`).join(', ')}`);
  if (THREADS) console.log(`    ${label} peak RSS rose after these agent lines: ${[...rise].filter(([, kb]) => kb >= 1024).map(([name, kb]) => `"${name}" +${(kb / 1024).toFixed(1)} MB`).join(', ')}`);
  const ns = (name: string) => {
    try {
      return BigInt(readFileSync(join(world.runnerDir, '_diag', name), 'utf8').trim());
    } catch {
      throw new Error(`${label}: the job did not record ${name} (agent exit ${exitCode})\n${problems}${stderr}`);
    }
  };
  const jobStartNs = ns('bench-job-start');
  const jobEndNs = ns('bench-job-end');
  const running = /^\s*running\s+\+[\d.]+s\s+([\d.]+)s/m.exec(stderr);
  return {
    label,
    lines,
    shipping,
    exitCode,
    jobMs: Number(jobEndNs - jobStartNs) / 1e6,
    runningMs: running ? Number(running[1]) * 1000 : Number.NaN,
    afterJobMs: exitedAt - Number(jobEndNs / 1_000_000n),
    peakRssMb: peakKb / 1024,
    echoedEnd: echoed,
    agentCpuS: agentCpu,
    agentSysS: agentSys,
    motoCpuS: cpuSeconds(moto) - motoCpu0,
  };
}

/** Read the runner stream back from the head; count the job's lines that arrive in order. */
async function delivered(world: World): Promise<NonNullable<RunResult['delivered']>> {
  const started = performance.now();
  let token: string | undefined;
  let next = 1;
  let outOfOrder = 0;
  let events = 0;
  for (;;) {
    const out = await world.clients.logs.send(
      new GetLogEventsCommand({ logGroupName: world.logGroup, logStreamName: `${world.instanceId}/${RUN_ID}`, startFromHead: true, nextToken: token, limit: 10_000 }),
    );
    for (const e of out.events ?? []) {
      events++;
      const m = JOB_LINE.exec(e.message ?? '');
      if (!m) continue;
      if (Number(m[1]) === next) next++;
      else outOfOrder++;
    }
    if (!out.nextForwardToken || out.nextForwardToken === token || (out.events ?? []).length === 0) break;
    token = out.nextForwardToken;
  }
  return { inOrder: next - 1, outOfOrder, events, readMs: performance.now() - started };
}

/** One case, tried once more when its job never ran (printed with the reason): a machine shared with other test runs has hiccups. */
async function oneCase(moto: Moto, label: string, lines: number, shipping: Shipping, readBack: boolean, agent = AGENT, agentEnv: Record<string, string> = UNIT_ENV): Promise<RunResult> {
  try {
    return await oneCaseOnce(moto, label, lines, shipping, readBack, agent, agentEnv);
  } catch (error) {
    retried += 1; // printed with the figures (cases_retried): a failure is never hidden by its retry
    console.log(`  ${label}: failed, tried once more: ${String((error as Error).message).slice(0, 1500)}`);
    return oneCaseOnce(moto, label, lines, shipping, readBack, agent, agentEnv);
  }
}
let retried = 0;

async function oneCaseOnce(moto: Moto, label: string, lines: number, shipping: Shipping, readBack: boolean, agent: string, agentEnv: Record<string, string>): Promise<RunResult> {
  await moto.reset();
  const world = await createWorld({ moto, runner: { behavior: 'lines', lines } });
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const github = await startFakeGitHub({ version: RUNNER_VERSION, tarballs: { [arch]: await wideLineRunnerTarball(lines) } });
  const sink = shipping === 'sink' ? await startNullEndpoint() : undefined;
  try {
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const env = { ...agentEnv, ...(sink ? { AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: sink.endpoint } : {}) };
    const result = await runAgent(world, github, label, lines, shipping, env, motoPid(moto), agent);
    const final = (await world.telemetry()).at(-1);
    result.telemetry = { shipped: final?.log_lines_shipped, dropped: final?.log_lines_dropped, status: final?.status };
    if (shipping === 'moto' && readBack) result.delivered = await delivered(world);
    const s = (x: number) => (x / 1000).toFixed(2);
    console.log(
      `  ${label.padEnd(12)} job ${s(result.jobMs)} s (running ${s(result.runningMs)} s), after the job ${s(result.afterJobMs)} s, ` +
        `peak RSS ${result.peakRssMb.toFixed(1)} MB, CPU agent ${result.agentCpuS.toFixed(1)} s (sys ${result.agentSysS.toFixed(1)}) moto ${result.motoCpuS.toFixed(1)} s, ` +
        `exit ${result.exitCode} ${result.telemetry.status}` +
        (shipping === 'off' ? '' : `, shipped ${result.telemetry.shipped} dropped ${result.telemetry.dropped}`) +
        (result.delivered ? `, read back ${result.delivered.inOrder} in order (${result.delivered.outOfOrder} out of order)` : '') +
        (result.echoedEnd ? '' : ', stdout echo cut short'),
    );
    return result;
  } finally {
    sink?.server.close();
    await github.close();
    await world.close();
  }
}

/** The job without an agent: the same `seq` into a pipe that is read and dropped. Wall seconds. */
function noAgentJobSeconds(lines: number): number {
  const script = `seq -f 'line %07.0f ${PAD}' 1 ${lines} | cat > /dev/null`;
  const started = process.hrtime.bigint();
  const r = spawnSync('sh', ['-c', script], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`the no-agent job failed (${r.status})`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/**
 * Pin moto (every thread) to the last CPU and this bench (every thread; the agents and jobs it
 * starts inherit it) to the others, so that moto's CPU is its own and reported apart: otherwise
 * a faster agent and job take moto's CPU, and moto's backlog, not the agent, decides delivery.
 */
function pinMoto(moto: Moto): string {
  const pid = motoPid(moto);
  const cpus = availableParallelism();
  if (pid === undefined || cpus < 2) return 'not pinned';
  const m = spawnSync('taskset', ['-a', '-cp', String(cpus - 1), String(pid)], { encoding: 'utf8' });
  if (m.status !== 0) return `not pinned (taskset: ${m.error?.message ?? m.stderr.trim()})`;
  const rest = cpus === 2 ? '0' : `0-${cpus - 2}`;
  const b = spawnSync('taskset', ['-a', '-cp', rest, String(process.pid)], { encoding: 'utf8' });
  return b.status === 0
    ? `moto pinned to CPU ${cpus - 1}, the bench, agent and job to CPU ${rest} (taskset)`
    : `moto pinned to CPU ${cpus - 1}, the bench not (taskset: ${b.error?.message ?? b.stderr.trim()})`;
}

interface Variant {
  name: string;
  agent: string;
  env: Record<string, string>;
  off: RunResult[];
  on: RunResult[];
  small: RunResult[];
}

async function main(): Promise<void> {
  if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing: run \`node scripts/build.mjs\` first`);
  if (BASELINE && !existsSync(BASELINE)) throw new Error(`baseline ${BASELINE} is missing`);
  const benchStarted = performance.now();
  const moto = await startMoto();
  try {
    const pinned = pinMoto(moto);
    console.log(
      `log shipping benchmark: ${AGENT}${BASELINE ? ` against the baseline ${BASELINE}` : ''}, a fake job printing ${LINES.toLocaleString('en')} lines of 100 bytes ` +
        `(${Math.round(LINES / 10_000)} MB), ${ROUNDS} alternated rounds (medians); moto at ${moto.endpoint}, ${pinned}`,
    );
    await oneCase(moto, 'warm-up', 20_000, 'moto', false);
    const variants: Variant[] = [{ name: 'after', agent: AGENT, env: UNIT_ENV, off: [], on: [], small: [] }];
    if (BASELINE) variants.unshift({ name: 'before', agent: BASELINE, env: unitEnvironment(process.env.BENCH_BASELINE_UNIT), off: [], on: [], small: [] });
    const noAgent: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternated, so that drift (page cache, moto's heap, the other load on the machine) hurts no side.
      noAgent.push(noAgentJobSeconds(LINES));
      for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
        const tag = variants.length > 1 ? `${v.name} ` : '';
        if (CASES.has('off')) v.off.push(await oneCase(moto, `${tag}off #${round + 1}`, LINES, 'off', false, v.agent, v.env));
        if (CASES.has('on')) v.on.push(await oneCase(moto, `${tag}on #${round + 1}`, LINES, 'moto', READBACK && round === 0, v.agent, v.env));
        if (CASES.has('small')) v.small.push(await oneCase(moto, `${tag}small #${round + 1}`, SMALL_LINES, 'moto', false, v.agent, v.env));
      }
    }
    const double = DOUBLE ? await oneCase(moto, 'on 2x', 2 * LINES, 'moto', true) : undefined;
    const sink = SINK ? await oneCase(moto, 'null endpoint', LINES, 'sink', false) : undefined;

    const out = (key: string, value: string) => console.log(`${key}=${value}`);
    const per100 = 100 / (LINES / 10_000); // the job prints 100 bytes a line
    const noAgentS = median(noAgent);
    console.log('');
    out('log_lines_printed', String(LINES));
    out('job_wall_s_no_agent', noAgentS.toFixed(2));
    for (const v of variants) {
      if (v.on.length === 0 || v.off.length === 0 || v.small.length === 0 || !v.on[0]!.delivered) continue; // an investigation run: its lines above
      const p = variants.length > 1 ? `${v.name}_` : '';
      const d = v.on[0]!.delivered;
      const offMs = median(v.off.map((r) => r.jobMs));
      const onMs = median(v.on.map((r) => r.jobMs));
      const smallCpu = median(v.small.map((r) => r.agentCpuS));
      const cpuOn = median(v.on.map((r) => r.agentCpuS));
      const cpuOff = median(v.off.map((r) => r.agentCpuS));
      out(`${p}agent_cpu_s_per_100mb_shipping_on`, ((cpuOn - smallCpu) * per100).toFixed(2) + '  (primary; goal <= 3.0: the run\'s CPU minus a 10,000-line run\'s)');
      out(`${p}agent_cpu_s_per_100mb_shipping_off`, ((cpuOff - smallCpu) * per100).toFixed(2));
      out(`${p}agent_cpu_s_run_shipping_on`, cpuOn.toFixed(2) + '  (the whole run: boot to exit)');
      out(`${p}agent_cpu_s_run_shipping_off`, cpuOff.toFixed(2));
      out(`${p}agent_cpu_s_run_small_job`, smallCpu.toFixed(2));
      out(`${p}moto_cpu_s_shipping_on`, median(v.on.map((r) => r.motoCpuS)).toFixed(2) + '  (apart: moto is pinned to its own CPU)');
      out(`${p}log_lines_delivered`, String(d.inOrder));
      out(`${p}log_lines_delivered/log_lines_printed`, (d.inOrder / LINES).toFixed(4));
      out(`${p}log_lines_out_of_order`, String(d.outOfOrder));
      out(`${p}agent_peak_rss_mb`, median(v.on.map((r) => r.peakRssMb)).toFixed(1) + '  (goal <= 120)');
      out(`${p}agent_peak_rss_mb_shipping_off`, median(v.off.map((r) => r.peakRssMb)).toFixed(1));
      out(`${p}job_wall_s_shipping_off`, (offMs / 1000).toFixed(2));
      out(`${p}job_wall_s_shipping_on`, (onMs / 1000).toFixed(2));
      out(`${p}job_wall_shipping_on_vs_no_agent`, (onMs / 1000 / noAgentS).toFixed(2));
      out(`${p}shipping_after_job_s`, (median(v.on.map((r) => r.afterJobMs)) / 1000).toFixed(2));
      out(`${p}log_ship_ratio`, (onMs / offMs).toFixed(3) + '  (on/off: a slow "off" flatters it; the CPU figure is the primary one)');
      out(`${p}stdout_echo_cut_short_runs`, String([...v.on, ...v.off].filter((r) => !r.echoedEnd).length));
    }
    if (double?.delivered) out('log_lines_delivered/log_lines_printed_2x', (double.delivered.inOrder / (2 * LINES)).toFixed(4));
    if (double) out('agent_peak_rss_mb_2x', double.peakRssMb.toFixed(1));
    if (double) out('job_wall_s_shipping_on_2x', (double.jobMs / 1000).toFixed(2));
    if (sink) out('agent_cpu_s_run_null_endpoint', sink.agentCpuS.toFixed(2));
    out('cases_retried', String(retried));
    out('bench_seconds', ((performance.now() - benchStarted) / 1000).toFixed(0));
  } finally {
    await moto.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
