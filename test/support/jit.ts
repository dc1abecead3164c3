/**
 * JIT configs shaped like GitHub's `encoded_jit_config` (as the Go mirror's realJITConfig, but
 * small and deterministic): base64 of a JSON object whose entries are the runner root's
 * `.runner`, `.credentials` and `.credentials_rsaparams` files, each base64.
 */
import { createHash } from 'node:crypto';

const b64 = (text: string) => Buffer.from(text).toString('base64');

export function fakeJitConfig(runnerName: string, secret = 'fake-rsa-private-exponent-0123456789'): string {
  return b64(
    JSON.stringify({
      '.runner': b64(JSON.stringify({ agentId: 4242, agentName: runnerName, poolId: 1, poolName: 'Default', ephemeral: true, serverUrl: 'https://pipelines.actions.githubusercontent.com/x/', gitHubUrl: 'https://github.com/acme/app', workFolder: '_work', useV2Flow: true })),
      '.credentials': b64(JSON.stringify({ scheme: 'OAuth', data: { clientId: '3c4e5f6a-7b8c-9d0e-1f2a-3b4c5d6e7f80', authorizationUrl: 'https://vstoken.actions.githubusercontent.com/_apis/oauth2/token/x', requireFipsCryptography: 'False' } })),
      '.credentials_rsaparams': b64(JSON.stringify({ d: b64(secret), exponent: 'AQAB', modulus: b64(`${secret}-modulus`) })),
    }),
  );
}

/** What `sha256sum .runner .credentials .credentials_rsaparams` prints for the files a JIT config holds. */
export function jitFileDigests(jitConfig: string): string {
  const files = JSON.parse(Buffer.from(jitConfig, 'base64').toString('utf8')) as Record<string, string>;
  return ['.runner', '.credentials', '.credentials_rsaparams']
    .filter((name) => name in files)
    .map((name) => `${createHash('sha256').update(Buffer.from(files[name]!, 'base64')).digest('hex')}  ${name}\n`)
    .join('');
}
