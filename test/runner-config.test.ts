/**
 * The runner config as the orchestrator writes it (pkg/secrets): Go zero values, both
 * credentials, the split layout's packed credential, and errors that name fields, not values.
 * (test/orchestrator-contract.test.ts does the same with configs written by the Go mirror.)
 */
import { describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { assembleRunnerConfig, CREDENTIAL_MAX_DECODED_BYTES, parseRunnerConfig, registrationUrl, salvageQueueUrl, unpackCredential } from '../services/runner/config.js';

const names = { config: '/runs-fleet/runners/i-1/config', credential: '/runs-fleet/runners/i-1/credential' };
const base = { job_id: '4242', repo: 'acme/app' };

describe('runner config JSON', () => {
  it('reads Go zero values as absent and accepts unknown fields', () => {
    const config = parseRunnerConfig(
      JSON.stringify({ ...base, org: '', run_id: '', labels: null, is_org: false, runner_group: '', jit_config: 'abcdefgh', cache_url: '', some_future_field: { x: 1 } }),
      '/p',
    );
    expect(config).toMatchObject({ job_id: '4242', jit_config: 'abcdefgh', is_org: false });
    expect(config.org).toBeUndefined();
    expect(config.run_id).toBeUndefined();
    expect(config.labels).toBeUndefined();
    expect(config.cache_url).toBeUndefined();
  });

  it('accepts both credentials (the normal case): JIT wins', () => {
    const { config } = assembleRunnerConfig(JSON.stringify({ ...base, jit_config: 'JITJITJIT', jit_token: 'TOKTOKTOK' }), undefined, names);
    expect(config.jit_config).toBe('JITJITJIT');
    expect(config.jit_token).toBe('TOKTOKTOK');
  });

  it('builds org vs repo URLs for config.sh', () => {
    const token = parseRunnerConfig(JSON.stringify({ ...base, jit_token: 'tok123', org: 'acme', repo: 'app' }), '/p');
    expect(registrationUrl(token, 'https://github.com')).toBe('https://github.com/acme/app');
    expect(registrationUrl({ ...token, repo: 'other/app' }, 'https://ghe.local')).toBe('https://ghe.local/other/app');
    expect(registrationUrl({ ...token, is_org: true }, 'https://github.com')).toBe('https://github.com/acme');
  });

  it.each([
    ['{not json', 'is not valid JSON'],
    ['[]', '(root): expected object'],
    ['{"org":"acme","job_id":"1"}', 'no credential: neither jit_config nor jit_token'],
    ['{"jit_config":"aaaaaa"}', 'job_id: required'],
    ['{"jit_config":"aaaaaa","job_id":"12a"}', 'job_id: expected a decimal integer'],
    ['{"jit_config":"aaaaaa","job_id":"99999999999999999999"}', 'job_id'],
    ['{"jit_config":"aaaaaa","job_id":"1","run_id":"../x"}', 'run_id: expected a decimal integer'],
    ['{"jit_config":"aaaaaa","job_id":"1","labels":"x"}', 'labels: expected array'],
    ['{"jit_config":"aaaaaa","job_id":"1","termination_queue_url":"file:///x"}', 'termination_queue_url'],
    ['{"jit_token":"bbbbbb","job_id":"1"}', 'names neither org nor repo'],
  ])('rejects %s naming the problem', (text, message) => {
    expect(() => parseRunnerConfig(text, '/runs-fleet/runners/i-1/config')).toThrow(message);
  });

  it('never echoes a secret value in its errors', () => {
    const secret = 'SUPERSECRETTOKEN123';
    for (const text of [
      `{"jit_token": ${JSON.stringify(secret)}, "labels": 5}`,
      `{"jit_config": "${secret}`,
      `{"jit_config": 42, "x": "${secret}"}`,
      `{"jit_config": "x", "job_id": "${secret}"}`,
    ]) {
      expect(() => parseRunnerConfig(text, '/p')).toThrow();
      try {
        parseRunnerConfig(text, '/p');
      } catch (error) {
        expect((error as Error).message).not.toContain(secret);
      }
    }
  });

  it('salvages the termination queue of an otherwise unusable config', () => {
    expect(salvageQueueUrl('{"job_id":"x","termination_queue_url":"https://sqs.eu-west-1.amazonaws.com/1/q"}')).toBe('https://sqs.eu-west-1.amazonaws.com/1/q');
    expect(salvageQueueUrl('{"termination_queue_url":"file:///etc"}')).toBeUndefined();
    expect(salvageQueueUrl('{oops')).toBeUndefined();
  });
});

describe('the split layout’s credential parameter', () => {
  // A JIT config is base64 of JSON; the orchestrator stores base64(gzip(its decoded bytes)).
  const original = Buffer.from(JSON.stringify({ '.runner': 'x'.repeat(300), '.credentials_rsaparams': 'MIIE'.repeat(400) })).toString('base64');
  const packed = gzipSync(Buffer.from(original, 'base64'), { level: 9 }).toString('base64');

  it('restores the exact original JIT config from its compressed form', () => {
    expect(packed.length).toBeLessThan(original.length);
    const credential = unpackCredential(JSON.stringify({ jit_config: packed, jit_token: 'TOKTOKTOK', compressed: true }), names.credential);
    expect(credential.jitConfig).toBe(original);
    expect(credential.jitToken).toBe('TOKTOKTOK');
    expect(credential.packed).toBe(packed);
  });

  it('an uncompressed credential is taken as is; the credential parameter replaces inline values', () => {
    const { config, layout } = assembleRunnerConfig(
      JSON.stringify({ ...base, jit_token: 'OLDINLINE' }),
      JSON.stringify({ jit_config: 'PLAINJIT', jit_token: 'NEWTOKEN' }),
      names,
    );
    expect(layout).toBe('split');
    expect(config).toMatchObject({ jit_config: 'PLAINJIT', jit_token: 'NEWTOKEN' });
  });

  it('caps what a compressed credential may inflate to', () => {
    const bomb = gzipSync(Buffer.alloc(CREDENTIAL_MAX_DECODED_BYTES + 1)).toString('base64');
    expect(() => unpackCredential(JSON.stringify({ jit_config: bomb, compressed: true }), names.credential)).toThrow(
      `jit_config inflates to more than ${CREDENTIAL_MAX_DECODED_BYTES} bytes`,
    );
  });

  it.each([
    ['{"jit_config":"not base64!!","compressed":true}', 'compressed but not base64'],
    [JSON.stringify({ jit_config: Buffer.from('plain text, no gzip').toString('base64'), compressed: true }), 'is not gzip data'],
    ['{"jit_config":5}', 'jit_config: expected string'],
    ['not json', 'is not valid JSON'],
  ])('refuses a broken credential %s naming it', (text, message) => {
    expect(() => unpackCredential(text, names.credential)).toThrow(message);
    try {
      unpackCredential(text, names.credential);
    } catch (error) {
      expect((error as Error).message).toContain(names.credential);
    }
  });
});
