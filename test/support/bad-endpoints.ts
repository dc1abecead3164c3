/**
 * Endpoints that misbehave, for fault injection: one that answers every request with
 * 503 ("down"), one that accepts connections and never answers ("hang").
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';

export interface BadEndpoint {
  url: string;
  requests: number;
  close(): Promise<void>;
}

export async function startBadEndpoint(kind: 'down' | 'hang'): Promise<BadEndpoint> {
  const sockets = new Set<Socket>();
  const state = { requests: 0 };
  const server: Server = createServer((req, res) => {
    state.requests += 1;
    req.resume();
    if (kind === 'hang') return; // never answer
    res.writeHead(503, { 'content-type': 'application/json', 'x-amzn-errortype': 'ServiceUnavailable' });
    res.end(JSON.stringify({ __type: 'ServiceUnavailable', message: 'injected fault: service unavailable' }));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    get requests() {
      return state.requests;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
