/** Unit tests of the AWS-facing services with aws-sdk-client-mock, and identity/spot against the fake IMDS. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { EC2Client, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { DeleteParameterCommand, GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import { mockClient } from 'aws-sdk-client-mock';
import { terminateInstance } from '../services/aws/ec2-terminate.js';
import { resolveIdentity } from '../services/aws/identity.js';
import { SecretVault } from '../services/secrets.js';
import { parseSettings } from '../services/settings.js';
import { readSpotNotice } from '../services/aws/spot-notice.js';
import { ConfigNotFoundError, SsmConfigStore, UnusableConfigError } from '../services/aws/ssm-config.js';
import { startFakeImds, type FakeImds } from './support/fake-imds.js';

const awsError = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

describe('SsmConfigStore (one standby poll)', () => {
  const ssm = mockClient(SSMClient);
  const names = { config: '/runs-fleet/runners/i-1/config', credential: '/runs-fleet/runners/i-1/credential' };
  const notFound = () => awsError('ParameterNotFound', 400);
  const store = (vault = new SecretVault(), log?: { info(): void; warn(obj: object, msg?: string): void }) =>
    new SsmConfigStore(new SSMClient({ region: 'us-east-1' }), vault, log);
  beforeEach(() => {
    ssm.reset();
    ssm.on(DeleteParameterCommand).resolves({});
  });

  it('split layout: reads both with decryption, deletes both (config first), keeps secrets out of the JobSpec', async () => {
    ssm.on(GetParameterCommand, { Name: names.config }).resolves({ Parameter: { Value: JSON.stringify({ run_id: '7', job_id: '8', repo: 'acme/app', org: '', labels: null, is_org: false }) } });
    ssm.on(GetParameterCommand, { Name: names.credential }).resolves({ Parameter: { Value: JSON.stringify({ jit_config: 'JITSECRET123', jit_token: 'TOKEN456789' }) } });
    const vault = new SecretVault();
    const spec = await store(vault).poll(names);
    expect(ssm.commandCalls(GetParameterCommand).map((c) => c.args[0].input)).toEqual([
      { Name: names.config, WithDecryption: true },
      { Name: names.credential, WithDecryption: true },
    ]);
    expect(ssm.commandCalls(DeleteParameterCommand).map((c) => c.args[0].input.Name)).toEqual([names.config, names.credential]);
    expect(spec).toMatchObject({ mode: 'jit', layout: 'split', runId: '7', jobId: '8', repo: 'acme/app', labels: [], isOrg: false });
    expect(spec.org).toBeUndefined(); // Go's "" is absent
    expect(JSON.stringify(spec)).not.toMatch(/JITSECRET123|TOKEN456789/);
    expect(vault.get('jit_config')).toBe('JITSECRET123');
    expect(vault.get('jit_token')).toBe('TOKEN456789');
  });

  it('legacy layout: no credential parameter, both credentials inline — JIT wins, the token is kept as a secret', async () => {
    ssm.on(GetParameterCommand, { Name: names.config }).resolves({ Parameter: { Value: JSON.stringify({ job_id: '8', repo: 'acme/app', jit_config: 'JITSECRET123', jit_token: 'TOKEN456789' }) } });
    ssm.on(GetParameterCommand, { Name: names.credential }).rejects(notFound());
    const vault = new SecretVault();
    const spec = await store(vault).poll(names);
    expect(spec).toMatchObject({ mode: 'jit', layout: 'legacy' });
    expect(vault.redact('x TOKEN456789 y')).toBe('x *** y');
  });

  it('not written yet → ConfigNotFoundError, nothing deleted', async () => {
    ssm.on(GetParameterCommand).rejects(notFound());
    await expect(store().poll(names)).rejects.toBeInstanceOf(ConfigNotFoundError);
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
  });

  it('a config without any credential reads as not there yet (as the orchestrator\'s own store)', async () => {
    ssm.on(GetParameterCommand, { Name: names.config }).resolves({ Parameter: { Value: JSON.stringify({ job_id: '8', repo: 'acme/app' }) } });
    ssm.on(GetParameterCommand, { Name: names.credential }).rejects(notFound());
    await expect(store().poll(names)).rejects.toMatchObject({ kind: 'not-found' });
    expect(ssm.commandCalls(DeleteParameterCommand)).toHaveLength(0);
  });

  it('throttling is a read error marked throttled; a 5xx a plain read error; each call has its own timeout', async () => {
    ssm.on(GetParameterCommand).rejectsOnce(awsError('ThrottlingException', 400)).rejectsOnce(awsError('InternalServerError', 500));
    await expect(store().poll(names)).rejects.toMatchObject({ kind: 'read-error', throttled: true });
    await expect(store().poll(names)).rejects.toMatchObject({ kind: 'read-error', throttled: false });
    ssm.on(GetParameterCommand).callsFake(() => new Promise(() => {})); // SSM never answers
    const started = Date.now();
    await expect(store().poll(names, { timeoutMs: 100 })).rejects.toThrow(/no answer within 100 ms/);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('an unusable config names the field, never the value; it is deleted anyway; its queue is salvaged', async () => {
    const value = JSON.stringify({ job_id: 'not-a-number-SECRETISH', jit_config: 'JITSECRET123', termination_queue_url: 'https://sqs.us-east-1.amazonaws.com/1/q' });
    ssm.on(GetParameterCommand, { Name: names.config }).resolves({ Parameter: { Value: value } });
    ssm.on(GetParameterCommand, { Name: names.credential }).rejects(notFound());
    const error = (await store().poll(names).catch((e: unknown) => e)) as UnusableConfigError;
    expect(error).toBeInstanceOf(UnusableConfigError);
    expect(error.message).toContain('job_id: expected a decimal integer');
    expect(error.message).not.toMatch(/SECRETISH|JITSECRET123/);
    expect(error.queueUrl).toBe('https://sqs.us-east-1.amazonaws.com/1/q');
    expect(ssm.commandCalls(DeleteParameterCommand).map((c) => c.args[0].input.Name)).toEqual([names.config, names.credential]);
  });

  it('a denied or missing delete is a warning, never a failed boot', async () => {
    ssm.on(GetParameterCommand, { Name: names.config }).resolves({ Parameter: { Value: JSON.stringify({ job_id: '8', repo: 'a/b', jit_config: 'abcdefgh' }) } });
    ssm.on(GetParameterCommand, { Name: names.credential }).rejects(notFound());
    ssm.on(DeleteParameterCommand, { Name: names.config }).rejects(awsError('AccessDeniedException', 400));
    ssm.on(DeleteParameterCommand, { Name: names.credential }).rejects(notFound());
    const warnings: string[] = [];
    await store(new SecretVault(), { info: () => {}, warn: (_o, m) => warnings.push(m ?? '') }).poll(names);
    expect(warnings).toEqual([expect.stringContaining(`could not delete ${names.config}: the instance role may not delete it`)]);
  });
});

describe('terminateInstance', () => {
  const ec2 = mockClient(EC2Client);
  beforeEach(() => {
    ec2.reset();
  });

  it('asks for exactly this instance, once; a 5xx is a retriable failure for the chart', async () => {
    ec2.on(TerminateInstancesCommand).rejectsOnce(awsError('InternalError', 503)).resolves({});
    await expect(terminateInstance(new EC2Client({ region: 'us-east-1' }), 'i-0abc')).rejects.toMatchObject({ retriable: true, name: 'TerminationError' });
    await terminateInstance(new EC2Client({ region: 'us-east-1' }), 'i-0abc');
    expect(ec2.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input)).toEqual([{ InstanceIds: ['i-0abc'] }, { InstanceIds: ['i-0abc'] }]);
  });

  it('an authorization error is not retriable', async () => {
    ec2.on(TerminateInstancesCommand).rejects(awsError('UnauthorizedOperation', 403));
    await expect(terminateInstance(new EC2Client({ region: 'us-east-1' }), 'i-0abc')).rejects.toMatchObject({
      retriable: false,
      message: expect.stringContaining('TerminateInstances for i-0abc failed: UnauthorizedOperation'),
    });
  });
});

describe('identity and spot notices over IMDSv2 (fake IMDS, real client)', () => {
  let imds: FakeImds;
  const client = () => new MetadataService({ endpoint: imds.endpoint, httpOptions: { timeout: 1000 }, retries: 0, ec2MetadataV1Disabled: true });
  beforeAll(async () => {
    imds = await startFakeImds({ instanceId: 'i-0123456789abcdef0', region: 'eu-west-1' });
  });
  afterAll(() => imds.close());

  it('asks IMDS only for what the environment does not give', async () => {
    expect(await resolveIdentity(parseSettings({}).settings, client)).toEqual({ instanceId: 'i-0123456789abcdef0', region: 'eu-west-1' });
    const before = imds.requests.length;
    expect(await resolveIdentity(parseSettings({ RUNS_FLEET_INSTANCE_ID: 'i-0fff', AWS_REGION: 'us-west-2' }).settings, client)).toEqual({
      instanceId: 'i-0fff',
      region: 'us-west-2',
    });
    expect(imds.requests.length).toBe(before);
    expect(imds.requests.some((r) => r.method === 'PUT' && r.path === '/latest/api/token')).toBe(true);
  });

  it('a dead IMDS is a clear error naming the variable to set', async () => {
    imds.setDown(true);
    try {
      await expect(resolveIdentity(parseSettings({}).settings, client)).rejects.toThrow(/instance id from IMDS.*RUNS_FLEET_INSTANCE_ID/);
    } finally {
      imds.setDown(false);
    }
  });

  it('spot: no notice on 404, the notice once set', async () => {
    expect(await readSpotNotice(client())).toBeUndefined();
    imds.setSpotAction({ action: 'terminate', time: '2026-11-28T10:02:00Z' });
    expect(await readSpotNotice(client())).toEqual({ action: 'terminate', time: '2026-11-28T10:02:00Z' });
    imds.setSpotAction(null);
  });
});
