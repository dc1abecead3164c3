/**
 * `run --inspect[=PORT]`: the machine's live inspection events, served on loopback only
 * (reach it with `ssh -L PORT:127.0.0.1:PORT`). Off unless asked. @statelyai/inspect's
 * WebSocket inspector sends the events; this relay passes them on to viewers.
 *
 * Any local user can connect to a loopback port, the job's included, so the relay:
 * - serves only with a random token, printed once to the agent's journal (stderr, never the
 *   logger: not shipped to CloudWatch) and redacted from every log line;
 * - checks Origin: a browser page of another site cannot reach it;
 * - caps every payload (64 KiB) and the history it keeps (500 messages, 4 MiB);
 * - relays only the agent's own events (its inspector connects with a second, unprinted
 *   token); what a viewer sends is dropped.
 */
import { createWebSocketInspector } from '@statelyai/inspect';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../services/logs/logger.js';

export const DEFAULT_INSPECT_PORT = 8080;
const BUFFER = 500;
const BUFFER_BYTES = 4 * 1024 * 1024;
export const MAX_PAYLOAD_BYTES = 64 * 1024;

const sameToken = (given: string | null, token: string) =>
  given !== null && given.length === token.length && timingSafeEqual(Buffer.from(given), Buffer.from(token));

const page = (port: number) => `<!DOCTYPE html><html><head><title>runs-fleet-agent inspector</title>
<style>html,body,iframe{margin:0;height:100%;width:100%;border:0}</style></head><body>
<iframe id="i" src="https://stately.ai/inspect"></iframe><script>
const f=document.getElementById('i'),buf=[];let ok=false;
addEventListener('message',e=>{if(e.data&&e.data.type==='@statelyai.connected'){ok=true;buf.forEach(m=>f.contentWindow.postMessage(m,'*'));buf.length=0}});
const ws=new WebSocket('ws://'+location.host+'/'+location.search);ws.onmessage=e=>{const d=JSON.parse(e.data);ok?f.contentWindow.postMessage(d,'*'):buf.push(d)};
</script></body></html>`;

export interface InspectorOptions {
  port?: number;
  logger: Logger;
  /** Where the viewer's URL (with its token) is printed once: the agent's stderr, i.e. journald. */
  announce: (line: string) => void;
  /** Receives the tokens, so that no log line can carry them (the vault). */
  secret?: (name: string, value: string) => void;
}

export async function startInspector(options: InspectorOptions) {
  const port = options.port ?? DEFAULT_INSPECT_PORT;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`--inspect port must be 1-65535, got ${options.port}`);
  const viewerToken = randomBytes(24).toString('base64url');
  const sourceToken = randomBytes(24).toString('base64url');
  options.secret?.('inspector_token', viewerToken);
  options.secret?.('inspector_source_token', sourceToken);
  const allowedOrigins = new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);
  const roleOf = (req: IncomingMessage): 'viewer' | 'source' | undefined => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (sameToken(url.searchParams.get('source'), sourceToken)) return 'source';
    if (sameToken(url.searchParams.get('token'), viewerToken)) return 'viewer';
    return undefined;
  };
  const http = createServer((req, res) => {
    if (roleOf(req) !== 'viewer') {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('the inspector needs the token printed in the agent\'s journal\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end(page(port));
  });
  const wss = new WebSocketServer({
    server: http,
    maxPayload: MAX_PAYLOAD_BYTES,
    verifyClient: ({ req, origin }, done) => {
      // A browser sends its page's Origin: only ours may connect. Non-browser clients send none.
      if (origin && !allowedOrigins.has(origin)) return done(false, 403, 'Origin not allowed');
      if (!roleOf(req)) return done(false, 401, 'token required');
      done(true);
    },
  });
  const history: string[] = [];
  let historyBytes = 0;
  wss.on('error', (error) => options.logger.warn({ err: error.message }, 'inspector server error'));
  wss.on('connection', (socket, req) => {
    const role = roleOf(req);
    // An oversized or malformed frame closes that connection (1009/1002), never the agent.
    socket.on('error', () => socket.terminate());
    if (role === 'viewer') for (const message of history) socket.send(message);
    socket.on('message', (data) => {
      if (role !== 'source') return; // viewers only watch
      const message = data.toString();
      history.push(message);
      historyBytes += message.length;
      while (history.length > BUFFER || historyBytes > BUFFER_BYTES) historyBytes -= history.shift()!.length;
      for (const client of wss.clients) {
        if (client !== socket && client.readyState === WebSocket.OPEN) client.send(message);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, '127.0.0.1', () => resolve());
  });
  options.logger.info({ url: `http://127.0.0.1:${port}`, websocket: `ws://127.0.0.1:${port}` }, 'inspector listening on loopback');
  options.announce(`runs-fleet-agent inspector: http://127.0.0.1:${port}/?token=${viewerToken} (ssh -L ${port}:127.0.0.1:${port} the instance, then open it)\n`);
  const inspector = createWebSocketInspector({
    url: `ws://127.0.0.1:${port}/?source=${sourceToken}`,
    // Functions (the injected clock) do not serialize; the context holds no secret by design.
    sanitizeContext: (context) => ({ ...context, now: undefined }),
  });
  return {
    inspect: inspector.inspect,
    async stop() {
      // Give queued events a moment to leave before closing.
      await new Promise((resolve) => setTimeout(resolve, 100));
      inspector.stop();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => http.close(() => resolve())));
    },
  };
}
