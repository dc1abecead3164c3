/**
 * Least privilege as deployed: a proxy in front of moto that answers chosen AWS calls with
 * AccessDenied, the way IAM does for a role without the permission, and forwards the rest.
 * Rules name JSON-protocol targets (`AmazonSSM.DeleteParameter`, `Logs_20140328.PutLogEvents`)
 * or S3 methods (`S3:PUT`).
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';

export interface DenyProxy {
  url: string;
  /** The calls it denied, as `target` or `S3:METHOD /path`. */
  denied: string[];
  close(): Promise<void>;
}

export async function startDenyProxy(upstream: string, rules: string[]): Promise<DenyProxy> {
  const denied: string[] = [];
  const target = new URL(upstream);
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const amzTarget = String(req.headers['x-amz-target'] ?? '');
      const s3Rule = `S3:${req.method}`;
      if (amzTarget && rules.includes(amzTarget)) {
        denied.push(amzTarget);
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': 'AccessDeniedException' });
        res.end(JSON.stringify({ __type: 'AccessDeniedException', message: `User: arn:aws:sts::123456789012:assumed-role/runs-fleet-runner/i-x is not authorized to perform: ${amzTarget}` }));
        return;
      }
      if (!amzTarget && rules.includes(s3Rule)) {
        denied.push(`${s3Rule} ${req.url}`);
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
        return;
      }
      const body = Buffer.concat(chunks);
      const forward = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
        },
      );
      forward.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    denied,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
