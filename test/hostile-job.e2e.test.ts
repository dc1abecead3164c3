/**
 * A hostile job, as an attacker would write it, against the built agent running as root with
 * moto and the fakes: it calls IMDS for the instance role, finds the runner cache poisoned by
 * some other instance's job, and escapes run.sh's session with setsid to keep swapping
 * symlinks into its work dir while root cleans up. Each of these worked before (issue 11).
 *
 * The IMDS block needs what it needs on an instance: root, and nftables (make test installs it).
 * Where that is missing the test fails saying so — it is never skipped.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runnerCacheKey } from '../services/install/s3-cache.js';
import { createWorld, JIT_SECRET, RUNNER_VERSION, TEST_RUNNER_USER, type World } from './support/agent-world.js';
import { buildFakeRunnerTarball, sha256 } from './support/fake-runner.js';
import { startMoto, type Moto } from './support/moto.js';

/** A live process (a killed one whose parent has not reaped it yet is a zombie: dead). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto.stop();
  rmSync(LOOT_PARENT, { recursive: true, force: true });
});

/**
 * Where the job reports what it got: one per test process (two checkouts may test at once), in a
 * fresh root-owned parent (traversable, not writable by others), so that root's rm/mkdir/chown of
 * it cannot be steered by a link planted in /tmp.
 */
const LOOT_PARENT = mkdtempSync(join(tmpdir(), 'rfa-hostile-'));
chmodSync(LOOT_PARENT, 0o711);
const LOOT = join(LOOT_PARENT, 'loot');

/** The job's steps: all as the runner user, with the job's environment. `$LOOT` is where it reports what it got. */
const HOSTILE_JOB = String.raw`
LOOT=${LOOT}
# 1. The instance role: IMDS, on the real address and on the one this instance uses.
port=$(cat "$LOOT/imds-port")
if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo reached > "$LOOT/imds"; else echo refused > "$LOOT/imds"; fi
if timeout 3 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null; then echo reached > "$LOOT/imds-real"; else echo refused > "$LOOT/imds-real"; fi
# 2. Out of run.sh's session: a process that outlives the job and keeps planting links to
#    root's files where root's cleanup will walk.
mkdir -p _work
setsid bash -c '
  echo $$ > '"$LOOT"'/escaped.pid
  while :; do
    for d in d1 d2 d3; do
      rm -rf "_work/$d" 2>/dev/null; mkdir -p "_work/$d/sub" 2>/dev/null
      rm -rf "_work/$d" 2>/dev/null; ln -sfn '"$LOOT"'/canaries "_work/$d" 2>/dev/null
    done
    date +%s%N > '"$LOOT"'/heartbeat
  done' </dev/null >/dev/null 2>&1 &
sleep 0.5
`;

const arch = process.arch === 'arm64' ? 'arm64' : 'x64';

/** A world whose runner runs HOSTILE_JOB, the loot dir it reports to, and root's canaries. */
async function hostileWorld(): Promise<World> {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (the agent runs as root on an instance, and only root can firewall the runner user)');
  if (spawnSync('nft', ['--version']).status !== 0) throw new Error('this test needs nftables (`make test` installs it): the IMDS block is an nft owner match');
  // RFA_AGENT_UNDER_TEST: run another build of the agent (e.g. an older main's) against the same attack.
  const agent = process.env.RFA_AGENT_UNDER_TEST ? { agent: [process.execPath, process.env.RFA_AGENT_UNDER_TEST] } : {};
  const world = await createWorld({ moto, runner: { behavior: 'succeed', jobScript: HOSTILE_JOB }, ...agent });
  spawnSync('rm', ['-rf', LOOT]);
  mkdirSync(join(LOOT, 'canaries'), { recursive: true });
  const runner = spawnSync('id', ['-u', TEST_RUNNER_USER], { encoding: 'utf8' });
  chownSync(LOOT, Number(runner.stdout.trim()), 0);
  chmodSync(join(LOOT, 'canaries'), 0o755);
  for (let i = 0; i < 50; i++) writeFileSync(join(LOOT, 'canaries', `canary-${i}`), 'root-owned');
  writeFileSync(join(LOOT, 'imds-port'), new URL(world.imds.endpoint).port);
  await world.putRunnerConfig({ jit_config: JIT_SECRET });
  return world;
}

describe('a hostile job cannot escape', () => {
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
    spawnSync('rm', ['-rf', LOOT]);
  });

  it('the job has no instance credentials: IMDS refused to the runner user, while the agent reached it', async () => {
    world = await hostileWorld();
    const run = await world.runAgent();
    expect(run.exitCode).toBe(0);
    expect(readFileSync(join(LOOT, 'imds'), 'utf8').trim()).toBe('refused');
    expect(readFileSync(join(LOOT, 'imds-real'), 'utf8').trim()).toBe('refused');
    expect(world.imds.requests.some((r) => r.path.includes('instance-id'))).toBe(true);
    expect(run.logs.find((l) => l.msg === 'the job cannot reach the instance metadata service')).toMatchObject({ mechanism: 'nft' });
  }, 60_000);

  it('a runner cache poisoned by another instance (matching metadata) is refused; the verified runner runs', async () => {
    world = await hostileWorld();
    const bucket = `${world.bucket}-cache`;
    const substitute = await buildFakeRunnerTarball({ version: RUNNER_VERSION, behavior: 'succeed', jobName: 'backdoored' });
    await world.clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await world.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: runnerCacheKey(RUNNER_VERSION, arch), Body: substitute, Metadata: { sha256: sha256(substitute) } }));
    const run = await world.runAgent({ RUNS_FLEET_CONFIG_BUCKET: bucket });
    expect(run.exitCode).toBe(0);
    expect(run.logs.find((l) => /^runner .* ready from /.test(String(l.msg)))?.source).toBe('github');
    expect(run.logs.some((l) => l.msg === 'S3 cache unavailable or refused: falling back to GitHub' && /checksum mismatch/.test(String(l.err)))).toBe(true);
    expect((await world.logEvents()).some((line) => line.includes('Running job: backdoored'))).toBe(false);
  }, 60_000);

  it('nothing of the job outlives draining, however it detached, and root’s cleanup follows none of its links', async () => {
    world = await hostileWorld();
    const run = await world.runAgent();
    expect(run.exitCode).toBe(0);
    const escaped = Number(readFileSync(join(LOOT, 'escaped.pid'), 'utf8'));
    expect(alive(escaped)).toBe(false);
    // Gone before the final report went out (its last heartbeat is earlier).
    const lastBeat = Number(readFileSync(join(LOOT, 'heartbeat'), 'utf8')) / 1e6;
    const finalSent = Date.parse(String(run.logs.filter((l) => l.msg === 'telemetry sent').at(-1)?.time));
    expect(lastBeat).toBeLessThan(finalSent);
    expect(world.runnerProcesses()).toEqual([]);
    expect(readdirSync(join(LOOT, 'canaries')).length).toBe(50);
    expect((await world.telemetry()).at(-1)).toMatchObject({ status: 'success' });
  }, 60_000);
});
