/**
 * A fake EC2 instance metadata service, IMDSv2 only (like an instance launched with
 * `HttpTokens=required`): `PUT /latest/api/token` with `x-aws-ec2-metadata-token-ttl-seconds`
 * (1..21600) returns a token; every GET must carry a live `x-aws-ec2-metadata-token`, else 401.
 *
 * Use `endpoint` as AWS_EC2_METADATA_SERVICE_ENDPOINT (or `new MetadataService({ endpoint })`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface SpotAction {
  action: 'terminate' | 'stop' | 'hibernate';
  time: string; // ISO-8601, e.g. '2025-01-01T12:02:00Z'
}

export interface FakeImds {
  endpoint: string; // http://127.0.0.1:PORT
  /** Every request, in arrival order; status is 0 while it is not answered (hanging). */
  requests: { method: string; path: string; status: number }[];
  setSpotAction(action: SpotAction | null): void;
  /** Rebalance recommendation notice time (ISO), or null for 404. */
  setRebalance(noticeTime: string | null): void;
  setInstanceId(id: string): void;
  /** These metadata paths (e.g. `/latest/meta-data/ami-id`) answer 404 from now on. */
  setMissing(paths: string[]): void;
  /** Makes every token issued so far invalid (401); new PUTs get fresh, valid tokens. */
  expireTokens(): void;
  /** Every request -> 503. */
  setDown(down: boolean): void;
  /** Requests are never answered (until close()). */
  setHang(h: boolean): void;
  close(): Promise<void>;
}

const MAX_TTL = 21600;

export async function startFakeImds(opts: { instanceId: string; region: string }): Promise<FakeImds> {
  let instanceId = opts.instanceId;
  let spot: SpotAction | null = null;
  let rebalance: string | null = null;
  let down = false;
  let hang = false;
  let missing = new Set<string>();
  const tokens = new Map<string, number>(); // token -> expiry (ms epoch)
  const requests: FakeImds['requests'] = [];
  const sockets = new Set<Socket>();

  const text = (res: ServerResponse, rec: { status: number }, status: number, body: string, type = 'text/plain') => {
    rec.status = status;
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), server: 'EC2ws' });
    res.end(body);
  };

  function metadata(path: string): string | undefined {
    const az = `${opts.region}a`;
    if (missing.has(path)) return undefined;
    switch (path) {
      case '/latest/meta-data/instance-id':
        return instanceId;
      case '/latest/meta-data/placement/region':
        return opts.region;
      case '/latest/meta-data/placement/availability-zone':
        return az;
      case '/latest/meta-data/instance-type':
        return 't3.medium';
      case '/latest/meta-data/instance-life-cycle':
        return 'spot';
      case '/latest/meta-data/ami-id':
        return 'ami-12345678';
      case '/latest/meta-data/spot/instance-action':
        return spot ? JSON.stringify(spot) : undefined;
      case '/latest/meta-data/events/recommendations/rebalance':
        return rebalance ? JSON.stringify({ noticeTime: rebalance }) : undefined;
      case '/latest/dynamic/instance-identity/document':
        return JSON.stringify(
          { accountId: '123456789012', architecture: 'x86_64', availabilityZone: az, imageId: 'ami-12345678',
            instanceId, instanceType: 't3.medium', region: opts.region, version: '2017-09-30' },
          null, 2);
      default:
        return undefined;
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse, rec: { status: number }) {
    if (down) return text(res, rec, 503, 'Service Unavailable');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return text(res, rec, 405, 'Method Not Allowed');
      if (req.headers['x-forwarded-for'] !== undefined) return text(res, rec, 403, 'Forbidden');
      const raw = req.headers['x-aws-ec2-metadata-token-ttl-seconds'];
      const ttl = Number(raw);
      if (typeof raw !== 'string' || !/^\d+$/.test(raw) || ttl < 1 || ttl > MAX_TTL) {
        return text(res, rec, 400, 'Bad Request');
      }
      const token = randomBytes(30).toString('base64url');
      tokens.set(token, Date.now() + ttl * 1000);
      rec.status = 200;
      res.writeHead(200, { 'content-type': 'text/plain', 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
      return void res.end(token);
    }
    const token = req.headers['x-aws-ec2-metadata-token'];
    const expiry = typeof token === 'string' ? tokens.get(token) : undefined;
    if (expiry === undefined || expiry < Date.now()) return text(res, rec, 401, 'Unauthorized');
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, rec, 405, 'Method Not Allowed');
    const body = metadata(path);
    if (body === undefined) {
      // The real IMDS answers 404 with a small HTML page.
      const html = '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html>\n<html><head><title>404 - Not Found</title></head>\n<body><h1>404 - Not Found</h1></body></html>\n';
      return text(res, rec, 404, html, 'text/html');
    }
    return text(res, rec, 200, body);
  }

  const server = createServer((req, res) => {
    const rec = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0 };
    requests.push(rec);
    if (hang) return; // never answered; close() destroys the socket
    handle(req, res, rec);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('fake IMDS: no port');

  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    requests,
    setSpotAction: (a) => void (spot = a),
    setRebalance: (t) => void (rebalance = t),
    setInstanceId: (id) => void (instanceId = id),
    setMissing: (paths) => void (missing = new Set(paths)),
    expireTokens: () => tokens.clear(),
    setDown: (d) => void (down = d),
    setHang: (h) => void (hang = h),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
