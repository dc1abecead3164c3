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

/** How a connection attempt ends: open (then closed by us), or the HTTP status it was refused with. */
function attempt(url: string, headers: Record<string, string> = {}): Promise<number | 'open'> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(0));
  });
}

describe('live inspector', () => {
  it('serves the machine events on loopback only, with the token printed once to the journal; refuses the rest', async () => {
    await world.putRunnerConfig({ jit_config: JIT_SECRET });
    const port = await freePort();
    const received: { type?: string; event?: { type?: string }; snapshot?: { value?: unknown } }[] = [];
    const other: unknown[] = [];
    let socket: WebSocket | undefined;
    let bound: string[] = [];
    let token = '';
    const refusals: Record<string, number | 'open'> = {};
    const { child, done } = world.startAgent({}, {
      args: [`--inspect=${port}`],
      onStderr: (text) => {
        const found = /inspector: http:\/\/127\.0\.0\.1:\d+\/\?token=([A-Za-z0-9_-]+)/.exec(text)?.[1];
        if (!found || token) return;
        token = found;
        bound = listeners(port);
        socket = new WebSocket(`ws://127.0.0.1:${port}/?token=${token}`);
        socket.on('message', (data) => received.push(JSON.parse(data.toString())));
        void (async () => {
          refusals.noToken = await attempt(`ws://127.0.0.1:${port}/`);
          refusals.wrongToken = await attempt(`ws://127.0.0.1:${port}/?token=${'x'.repeat(token.length)}`);
          refusals.foreignOrigin = await attempt(`ws://127.0.0.1:${port}/?token=${token}`, { Origin: 'https://evil.example' });
          refusals.ownOrigin = await attempt(`ws://127.0.0.1:${port}/?token=${token}`, { Origin: `http://127.0.0.1:${port}` });
          refusals.page = (await fetch(`http://127.0.0.1:${port}/`)).status;
          // A viewer's messages are never relayed (nor kept), and a big one closes its connection.
          const second = new WebSocket(`ws://127.0.0.1:${port}/?token=${token}`);
          second.on('message', (data) => other.push(data.toString()));
          const chatty = new WebSocket(`ws://127.0.0.1:${port}/?token=${token}`);
          chatty.on('open', () => {
            chatty.send(JSON.stringify({ type: '@xstate.event', event: { type: 'FORGED' } }));
            chatty.send('x'.repeat(200 * 1024));
          });
          chatty.on('close', (code) => (refusals.oversized = code));
        })();
      },
      onLine: (line) => {
        if (line.includes('"state":"running"')) setTimeout(() => child.kill('SIGTERM'), 1500);
      },
    });
    const run = await done;
    socket?.close();
    expect(run.exitCode).toBe(0);
    expect(bound).toEqual(['0100007F']); // 127.0.0.1, nothing else
    expect(refusals).toMatchObject({ noToken: 401, wrongToken: 401, foreignOrigin: 403, ownOrigin: 'open', page: 403, oversized: 1009 });
    const types = new Set(received.map((m) => m.type));
    expect(types).toContain('@xstate.snapshot');
    expect(types).toContain('@xstate.event');
    expect(received.some((m) => m.event?.type === 'SIGTERM')).toBe(true);
    expect(JSON.stringify(received)).not.toContain('FORGED');
    expect(other.join('')).not.toContain('FORGED');
    expect(JSON.stringify(received)).not.toContain(JIT_SECRET);
    // Printed once, to stderr (journald) only: never in the JSON log (which CloudWatch gets).
    expect(run.stderr.split(token).length - 1).toBe(1);
    expect(run.stdout).not.toContain(token);
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
