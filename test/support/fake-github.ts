/**
 * A fake of the two GitHub endpoints the agent uses to get the actions/runner tarball:
 * the Releases API (`{api}/repos/actions/runner/releases/latest|tags/vV`) and the
 * release download URL (`{web}/actions/runner/releases/download/vV/<asset>`), which,
 * like the real one, answers with a 302 to a second host path (`/_objects/...`).
 *
 * Fault injection: failNext (HTTP errors, e.g. 429 + Retry-After), setHang (no answer),
 * setThrottle (slow download body).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createHash } from 'node:crypto';

export type RunnerArch = 'x64' | 'arm64';

export interface FakeGitHubOptions {
  version: string; // e.g. '2.330.0'
  tarballs: Partial<Record<RunnerArch, Buffer>>; // served at the download URLs
  /** How the release JSON gives SHA-256 (default 'digest'); 'wrong' = a digest that does not match. */
  checksum?: 'digest' | 'body' | 'none' | 'wrong';
}

export interface FakeGitHub {
  apiUrl: string; // http://127.0.0.1:PORT/api -> RUNS_FLEET_GITHUB_API_URL
  webUrl: string; // http://127.0.0.1:PORT     -> RUNS_FLEET_GITHUB_URL
  requests: { method: string; path: string }[]; // every request received, in order
  /** The next n requests (any path) fail with this HTTP status (e.g. 500, 404, 429 with Retry-After: 1). */
  failNext(n: number, status: number, headers?: Record<string, string>): void;
  /** When true, requests hang (never answer) until set false (then they are served) or close(). */
  setHang(hang: boolean): void;
  /** Serve download bodies slowly: bytes per second (undefined = full speed, 0 = stall after the headers). */
  setThrottle(bytesPerSecond: number | undefined): void;
  close(): Promise<void>;
}

const ARCHES: RunnerArch[] = ['x64', 'arm64'];
const assetName = (arch: string, v: string) => `actions-runner-linux-${arch}-${v}.tar.gz`;
/** Each tarball hashed once, not on every release request (a runner-sized one took 0.3 s a request). */
const hashes = new WeakMap<Buffer, string>();
const sha256hex = (b: Buffer) => {
  let hex = hashes.get(b);
  if (hex === undefined) hashes.set(b, (hex = createHash('sha256').update(b).digest('hex')));
  return hex;
};

export async function startFakeGitHub(opts: FakeGitHubOptions): Promise<FakeGitHub> {
  const checksum = opts.checksum ?? 'digest';
  const requests: { method: string; path: string }[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let failures: { left: number; status: number; headers: Record<string, string> } | undefined;
  let hanging = false;
  let parked: (() => void)[] = [];
  let throttle: number | undefined;
  let webUrl = '';

  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/' });
    const go = () => serve(req, res);
    if (hanging) parked.push(go);
    else go();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const text = JSON.stringify(body, null, 2);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'x-ratelimit-limit': '60',
      ...headers,
    });
    res.end(text);
  }

  function release() {
    const v = opts.version;
    const arches = ARCHES.filter((a) => opts.tarballs[a]);
    const shaLines = arches.map((a) => {
      const hex = sha256hex(opts.tarballs[a]!);
      const marked = checksum === 'body' || checksum === 'digest';
      return `- ${assetName(a, v)}` + (marked ? ` <!-- BEGIN SHA linux-${a} -->${hex}<!-- END SHA linux-${a} -->` : '');
    });
    return {
      url: `${webUrl}/api/repos/actions/runner/releases/1`,
      html_url: `${webUrl}/actions/runner/releases/tag/v${v}`,
      id: 1,
      tag_name: `v${v}`,
      target_commitish: 'main',
      name: `v${v}`,
      draft: false,
      prerelease: false,
      created_at: '2025-01-01T00:00:00Z',
      published_at: '2025-01-01T00:00:00Z',
      body:
        `## What's Changed\n* Fake release for tests\n\n## SHA-256 Checksums\n\n` +
        `The SHA-256 checksums for the packages included in this build are shown below:\n\n` +
        shaLines.join('\n') +
        '\n',
      assets: arches.map((a, i) => {
        const buf = opts.tarballs[a]!;
        const hex = checksum === 'wrong' ? sha256hex(Buffer.concat([buf, Buffer.from('tampered')])) : sha256hex(buf);
        return {
          id: 100 + i,
          name: assetName(a, v),
          label: '',
          content_type: 'application/octet-stream',
          state: 'uploaded',
          size: buf.length,
          ...(checksum === 'digest' || checksum === 'wrong' ? { digest: `sha256:${hex}` } : {}),
          download_count: 0,
          browser_download_url: `${webUrl}/actions/runner/releases/download/v${v}/${assetName(a, v)}`,
        };
      }),
    };
  }

  function sendBody(res: ServerResponse, buf: Buffer) {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': buf.length });
    let offset = 0;
    const pump = () => {
      if (res.destroyed) return;
      if (throttle === undefined) return void res.end(buf.subarray(offset));
      const chunk = throttle === 0 ? 0 : Math.max(1, Math.floor(throttle / 10)); // 10 ticks per second
      if (chunk > 0) res.write(buf.subarray(offset, offset + chunk));
      offset += chunk;
      if (offset >= buf.length) return void res.end();
      const t = setTimeout(() => (timers.delete(t), pump()), 100);
      timers.add(t);
    };
    pump();
  }

  function serve(req: IncomingMessage, res: ServerResponse) {
    if (failures && failures.left > 0) {
      const { status, headers } = failures;
      if (--failures.left === 0) failures = undefined;
      return json(res, status, { message: `Injected failure ${status}` }, headers);
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    const v = opts.version;
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 404, { message: 'Not Found' });

    if (p === '/api/repos/actions/runner/releases/latest' || p === `/api/repos/actions/runner/releases/tags/v${v}`) {
      return json(res, 200, release());
    }
    const dl = /^\/actions\/runner\/releases\/download\/v([^/]+)\/actions-runner-linux-([a-z0-9]+)-([^/]+)\.tar\.gz$/.exec(p);
    if (dl && dl[1] === v && dl[3] === v && opts.tarballs[dl[2] as RunnerArch]) {
      // Like github.com: redirect to the object store, with a signed-looking query.
      res.writeHead(302, { location: `${webUrl}/_objects/${dl[2]}/${assetName(dl[2]!, v)}?sig=fake`, 'content-length': 0 });
      return void res.end();
    }
    const obj = /^\/_objects\/([a-z0-9]+)\/([^/]+)$/.exec(p);
    const objBuf = obj ? opts.tarballs[obj[1] as RunnerArch] : undefined;
    if (obj && objBuf && obj[2] === assetName(obj[1]!, v)) return sendBody(res, objBuf);

    if (p.startsWith('/api/')) {
      return json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' });
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('Not Found');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('fake GitHub: no port');
  webUrl = `http://127.0.0.1:${addr.port}`;

  return {
    apiUrl: `${webUrl}/api`,
    webUrl,
    requests,
    failNext(n, status, headers = {}) {
      failures = n > 0 ? { left: n, status, headers } : undefined;
    },
    setHang(hang) {
      hanging = hang;
      if (!hang) {
        const waiting = parked;
        parked = [];
        waiting.forEach((go) => go());
      }
    },
    setThrottle(bps) {
      throttle = bps === undefined ? undefined : Math.max(0, bps);
    },
    close() {
      parked = [];
      for (const t of timers) clearTimeout(t);
      timers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
