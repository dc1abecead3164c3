/**
 * `run --inspect[=PORT]`: the machine's live inspection events, served on loopback only
 * (reach it with `ssh -L PORT:127.0.0.1:PORT`). @statelyai/inspect's WebSocket inspector
 * sends the events; this relay, like `@statelyai/inspect/server` but bound to
 * 127.0.0.1 and never opening a browser, passes them to every connected viewer.
 */
import { createWebSocketInspector } from '@statelyai/inspect';
import { createServer } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../services/logger.js';

export const DEFAULT_INSPECT_PORT = 8080;
const BUFFER = 500;

const page = (port: number) => `<!DOCTYPE html><html><head><title>runs-fleet-agent inspector</title>
<style>html,body,iframe{margin:0;height:100%;width:100%;border:0}</style></head><body>
<iframe id="i" src="https://stately.ai/inspect"></iframe><script>
const f=document.getElementById('i'),buf=[];let ok=false;
addEventListener('message',e=>{if(e.data&&e.data.type==='@statelyai.connected'){ok=true;buf.forEach(m=>f.contentWindow.postMessage(m,'*'));buf.length=0}});
const ws=new WebSocket('ws://'+location.hostname+':${port}');ws.onmessage=e=>{const d=JSON.parse(e.data);ok?f.contentWindow.postMessage(d,'*'):buf.push(d)};
</script></body></html>`;

export async function startInspector(options: { port?: number; logger: Logger }) {
  const port = options.port ?? DEFAULT_INSPECT_PORT;
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`--inspect port must be 1-65535, got ${options.port}`);
  const http = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(page(port));
  });
  const wss = new WebSocketServer({ server: http });
  const history: string[] = [];
  wss.on('connection', (socket) => {
    for (const message of history) socket.send(message);
    socket.on('message', (data) => {
      const message = data.toString();
      history.push(message);
      if (history.length > BUFFER) history.shift();
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
  const inspector = createWebSocketInspector({
    url: `ws://127.0.0.1:${port}`,
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
