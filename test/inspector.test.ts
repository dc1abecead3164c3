/** `run --inspect=PORT`: the machine's inspection events reach a viewer over a loopback websocket. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { createWorld, JIT_SECRET, type World } from './support/agent-world.js';
import { startMoto, type Moto } from './support/moto.js';
import { freePort } from './support/net.js';

let moto: Moto;
let world: World;
beforeAll(async () => {
  moto = await startMoto();
  world = await createWorld({ moto, runner: { behavior: 'hang' } });
});
afterAll(async () => {
  await world.close();
  await moto.stop();
});

/** Listening sockets on `port`, from /proc/net/tcp (local address as hex IP:port). */
function listeners(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A')
    .map((f) => f[1]!.split(':')[0]!);
}

describe('live inspector', () => {
  it('serves the machine events on loopback only, off by default', async () => {
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const port = await freePort();
    const received: { type?: string; event?: { type?: string }; snapshot?: { value?: unknown } }[] = [];
    let socket: WebSocket | undefined;
    let bound: string[] = [];
    const { child, done } = world.startAgent({}, {
      args: [`--inspect=${port}`],
      onLine: (line) => {
        if (line.includes('inspector listening on loopback')) {
          bound = listeners(port);
          socket = new WebSocket(`ws://127.0.0.1:${port}`);
          socket.on('message', (data) => received.push(JSON.parse(data.toString())));
        }
        if (line.includes('"state":"running"')) setTimeout(() => child.kill('SIGTERM'), 1000);
      },
    });
    const run = await done;
    socket?.close();
    expect(run.exitCode).toBe(0);
    expect(bound).toEqual(['0100007F']); // 127.0.0.1, nothing else
    const types = new Set(received.map((m) => m.type));
    expect(types).toContain('@xstate.snapshot');
    expect(types).toContain('@xstate.event');
    expect(received.some((m) => m.event?.type === 'SIGTERM')).toBe(true);
    expect(JSON.stringify(received)).not.toContain(JIT_SECRET);
  });

  it('opens no port without --inspect', async () => {
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const { child, done } = world.startAgent({}, {
      onLine: (line) => {
        if (line.includes('"state":"running"')) setTimeout(() => child.kill('SIGTERM'), 300);
      },
    });
    const run = await done;
    expect(run.logs.some((l) => l.msg === 'inspector listening on loopback')).toBe(false);
  });
});
