/**
 * A real AWS API emulator for tests: moto server on a free loopback port.
 *
 * Every test file that talks to AWS starts its own server (≈0.5 s), so parallel
 * jest workers never wipe each other's state; `reset()` wipes it between tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from './net.js';

export interface Moto {
  /** `http://127.0.0.1:PORT` — give it to the SDK as `AWS_ENDPOINT_URL`. */
  readonly endpoint: string;
  readonly port: number;
  /** Environment for a process (agent or SDK client) that must talk to this moto. */
  env(): Record<string, string>;
  /** Wipe every resource (`POST /moto-api/reset`). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export const MOTO_REGION = 'us-east-1';

export function assertMotoInstalled(): void {
  const probe = spawnSync('python3', ['-c', 'import moto, sys; sys.stdout.write(moto.__version__)'], {
    encoding: 'utf8',
  });
  if (probe.status !== 0) {
    throw new Error(
      'moto is not installed for python3: the AWS emulator the tests need is missing. ' +
        'Install it with `python3 -m pip install "moto[server]"`.\n' +
        (probe.stderr ?? ''),
    );
  }
}

export async function startMoto(): Promise<Moto> {
  assertMotoInstalled();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto server exited early (code ${child.exitCode}):\n${stderr}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto server did not answer on ${endpoint} within 20 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    endpoint,
    port,
    env: () => ({
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION: MOTO_REGION,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    }),
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 3000)))]);
        clearTimeout(timer);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
}
