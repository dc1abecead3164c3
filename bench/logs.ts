/**
 * Log-shipping benchmark (issue 5), with the REAL built agent (`dist/runs-fleet-agent.cjs`):
 * the world harness (moto, fake GitHub, fake IMDS, fake runner) runs one fake job that
 * prints N lines of 100 bytes as fast as it can, and the agent ships them to moto's
 * CloudWatch Logs.
 *
 *   node scripts/run-ts.mjs bench/logs.ts [--lines 1000000] [--rounds 2] [--no-double] [--no-sink]
 *                                         [--flush-seconds 10] [--agent path.cjs] [--agent-node-flags "..."]
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
 * Cases: shipping off (RUNS_FLEET_LOG_GROUP unset) and on, alternated `--rounds` times at N
 * lines (medians), on at 2N (RSS flatness), and — diagnostic — on with CloudWatch Logs pointed
 * at a null endpoint inside this process, which answers every call at once and parses nothing:
 * the agent's own cost of shipping without moto's CPU use (moto shares the same CPUs; the real
 * service does not).
 *
 * The flush deadline (RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS) is the production default, 10 s
 * (--flush-seconds to change it): what moto has not taken by then is dropped and counted, so
 * the delivered figure is what an instance would really deliver. How long shipping went on
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
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as createTar, extract as extractTar } from 'tar';
import { AGENT_BUNDLE, createWorld, JIT_SECRET, RUN_ID, RUNNER_VERSION, type World } from '../test/support/agent-world.js';
import { startFakeGitHub, type FakeGitHub } from '../test/support/fake-github.js';
import { buildFakeRunnerTarball } from '../test/support/fake-runner.js';
import { startMoto, type Moto } from '../test/support/moto.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1]!;
}
const LINES = Number(arg('--lines', '1000000'));
const ROUNDS = Math.max(1, Number(arg('--rounds', '2')));
const FLUSH_SECONDS = arg('--flush-seconds', '10');
const DOUBLE = !process.argv.includes('--no-double');
const SINK = !process.argv.includes('--no-sink');
/** Another agent bundle than dist/ (for investigation: a variant built to tell costs apart). */
const AGENT = arg('--agent', AGENT_BUNDLE);
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
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
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

async function runAgent(world: World, github: FakeGitHub, label: string, lines: number, shipping: Shipping, env: Record<string, string | undefined>, moto: number | undefined): Promise<RunResult> {
  const agentEnv = world.env({
    RUNS_FLEET_GITHUB_API_URL: github.apiUrl,
    RUNS_FLEET_GITHUB_URL: github.webUrl,
    RUNS_FLEET_LOG_GROUP: shipping === 'off' ? undefined : world.logGroup,
    RUNS_FLEET_MAX_RUNTIME_MINUTES: '20',
    RUNS_FLEET_LOG_FLUSH_TIMEOUT_SECONDS: FLUSH_SECONDS,
    RUNS_FLEET_REPORT_TIMEOUT_SECONDS: '30',
    ...env,
  });
  const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, AGENT, 'run'], { env: agentEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let echoed = false;
  child.stdout!.on(
    'data',
    jobEndScanner((line) => {
      if (line.includes('"msg":"runner"')) echoed = true;
    }),
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8000)));
  let peakKb = 0;
  let agentCpu = 0;
  const motoCpu0 = cpuSeconds(moto);
  const poll = setInterval(() => {
    peakKb = Math.max(peakKb, memoryKb(child.pid!));
    const cpu = cpuSeconds(child.pid);
    if (!Number.isNaN(cpu)) agentCpu = cpu;
  }, 100);
  const exitCode = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const exitedAt = Date.now();
  clearInterval(poll);
  const ns = (name: string) => {
    try {
      return BigInt(readFileSync(join(world.runnerDir, '_diag', name), 'utf8').trim());
    } catch {
      throw new Error(`${label}: the job did not record ${name} (agent exit ${exitCode})\n${stderr}`);
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

async function oneCase(moto: Moto, label: string, lines: number, shipping: Shipping, readBack: boolean): Promise<RunResult> {
  await moto.reset();
  const world = await createWorld({ moto, runner: { behavior: 'lines', lines } });
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const github = await startFakeGitHub({ version: RUNNER_VERSION, tarballs: { [arch]: await wideLineRunnerTarball(lines) } });
  const sink = shipping === 'sink' ? await startNullEndpoint() : undefined;
  try {
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const env = sink ? { AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: sink.endpoint } : {};
    const result = await runAgent(world, github, label, lines, shipping, env, motoPid(moto));
    const final = (await world.telemetry()).at(-1);
    result.telemetry = { shipped: final?.log_lines_shipped, dropped: final?.log_lines_dropped, status: final?.status };
    if (shipping === 'moto' && readBack) result.delivered = await delivered(world);
    const s = (x: number) => (x / 1000).toFixed(2);
    console.log(
      `  ${label.padEnd(12)} job ${s(result.jobMs)} s (running ${s(result.runningMs)} s), after the job ${s(result.afterJobMs)} s, ` +
        `peak RSS ${result.peakRssMb.toFixed(1)} MB, CPU agent ${result.agentCpuS.toFixed(1)} s moto ${result.motoCpuS.toFixed(1)} s, ` +
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

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing: run \`node scripts/build.mjs\` first`);
  const benchStarted = performance.now();
  const moto = await startMoto();
  try {
    console.log(
      `log shipping benchmark: ${AGENT}, a fake job printing ${LINES.toLocaleString('en')} lines of 100 bytes ` +
        `(${Math.round(LINES / 10_000)} MB); moto at ${moto.endpoint}; ${availableParallelism()} CPUs shared by the job, the agent, moto and this bench`,
    );
    await oneCase(moto, 'warm-up', 20_000, 'moto', false);
    const off: RunResult[] = [];
    const on: RunResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternated, so that drift (page cache, moto's heap) hurts neither side.
      off.push(await oneCase(moto, `off #${round + 1}`, LINES, 'off', false));
      on.push(await oneCase(moto, `on #${round + 1}`, LINES, 'moto', round === 0));
    }
    const double = DOUBLE ? await oneCase(moto, 'on 2x', 2 * LINES, 'moto', true) : undefined;
    const sink = SINK ? await oneCase(moto, 'null endpoint', LINES, 'sink', false) : undefined;

    const offMs = median(off.map((r) => r.jobMs));
    const onMs = median(on.map((r) => r.jobMs));
    const d = on[0]!.delivered!;
    const out = (key: string, value: string) => console.log(`${key}=${value}`);
    console.log('');
    out('log_lines_printed', String(LINES));
    out('log_lines_delivered', String(d.inOrder));
    out('log_lines_delivered/log_lines_printed', (d.inOrder / LINES).toFixed(4));
    out('log_lines_out_of_order', String(d.outOfOrder));
    if (double?.delivered) out('log_lines_delivered/log_lines_printed_2x', (double.delivered.inOrder / (2 * LINES)).toFixed(4));
    out('agent_peak_rss_mb', median(on.map((r) => r.peakRssMb)).toFixed(1));
    if (double) out('agent_peak_rss_mb_2x', double.peakRssMb.toFixed(1));
    out('agent_peak_rss_mb_shipping_off', median(off.map((r) => r.peakRssMb)).toFixed(1));
    out('job_wall_s_shipping_off', (offMs / 1000).toFixed(2));
    out('job_wall_s_shipping_on', (onMs / 1000).toFixed(2));
    if (double) out('job_wall_s_shipping_on_2x', (double.jobMs / 1000).toFixed(2));
    out('shipping_after_job_s', (median(on.map((r) => r.afterJobMs)) / 1000).toFixed(2));
    out('log_ship_ratio', (onMs / offMs).toFixed(3));
    if (sink) out('log_ship_ratio_null_endpoint', (sink.jobMs / offMs).toFixed(3));
    out('bench_seconds', ((performance.now() - benchStarted) / 1000).toFixed(0));
  } finally {
    await moto.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
