/**
 * Reaching into the running agent from outside, with nothing added to the product: Node's own
 * inspector, which every Node process — the single executable included — opens on
 * 127.0.0.1:9229 when it receives SIGUSR1 (only root, or the same uid, can send it). The tests
 * use it to make the real agent crash (an uncaught exception: the PANIC path) or hang (a busy
 * loop: its event loop never runs again, not even its SIGTERM handler), where nothing else can.
 *
 * The port is Node's fixed default (a SEA refuses --inspect-port in NODE_OPTIONS): it must be
 * free, and the process that answers must be the one signalled (its pid is checked).
 */
import { createConnection } from 'node:net';
import WebSocket from 'ws';

export const INSPECTOR_PORT = 9229;

const portInUse = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

/**
 * Evaluate `expression` in the process `hostPid` (whose own `process.pid` is `pidInside`, its pid
 * in the container). Resolves with the result once the inspector answered.
 */
export async function evaluateIn(hostPid: number, pidInside: number, expression: string): Promise<unknown> {
  if (await portInUse(INSPECTOR_PORT)) throw new Error(`127.0.0.1:${INSPECTOR_PORT} is already in use: Node's inspector cannot open there`);
  process.kill(hostPid, 'SIGUSR1');
  let targets: { webSocketDebuggerUrl: string }[] = [];
  for (let i = 0; i < 100 && targets.length === 0; i += 1) {
    try {
      targets = (await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json/list`)).json()) as typeof targets;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (targets.length !== 1) throw new Error(`no inspector target on 127.0.0.1:${INSPECTOR_PORT} after SIGUSR1 to ${hostPid}`);
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
  let id = 0;
  const call = (method: string, params: Record<string, unknown>) =>
    new Promise<any>((resolve, reject) => {
      const mine = ++id;
      const onMessage = (data: WebSocket.RawData) => {
        const message = JSON.parse(data.toString()) as { id?: number; result?: any; error?: unknown };
        if (message.id !== mine) return;
        ws.off('message', onMessage);
        if (message.error) reject(new Error(`${method}: ${JSON.stringify(message.error)}`));
        else resolve(message.result);
      };
      ws.on('message', onMessage);
      ws.send(JSON.stringify({ id: mine, method, params }));
    });
  try {
    const pid = (await call('Runtime.evaluate', { expression: 'process.pid', returnByValue: true })).result.value;
    if (pid !== pidInside) throw new Error(`the inspector on ${INSPECTOR_PORT} belongs to pid ${pid}, not the agent (${pidInside})`);
    const out = await call('Runtime.evaluate', { expression, returnByValue: true });
    if (out.exceptionDetails) throw new Error(`evaluation threw: ${JSON.stringify(out.exceptionDetails)}`);
    return out.result.value;
  } finally {
    ws.terminate();
  }
}
