/** Unit tests of the AWS-facing services with aws-sdk-client-mock, and identity/spot against the fake IMDS. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { EC2Client, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { DeleteParameterCommand, GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import { mockClient } from 'aws-sdk-client-mock';
import { terminateInstance } from '../services/ec2-terminate.js';
import { resolveIdentity } from '../services/identity.js';
import { SecretVault } from '../services/secrets.js';
import { parseSettings } from '../services/settings.js';
import { readSpotNotice } from '../services/spot-notice.js';
import { SsmConfigStore } from '../services/ssm-config.js';
import { startFakeImds, type FakeImds } from './support/fake-imds.js';

const awsError = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
const fast = { backoffMs: () => 1 };

describe('SsmConfigStore', () => {
  const ssm = mockClient(SSMClient);
  beforeEach(() => {
    ssm.reset();
  });

  it('reads with decryption, deletes the parameter, keeps secrets out of the JobSpec', async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: JSON.stringify({ jit_config: 'JITSECRET123', run_id: '7', job_id: '8', repo: 'acme/app' }) } });
    ssm.on(DeleteParameterCommand).resolves({});
    const vault = new SecretVault();
    const spec = await new SsmConfigStore(new SSMClient({ region: 'us-east-1' }), vault).take('/p', fast);
    expect(ssm.commandCalls(GetParameterCommand)[0]!.args[0].input).toEqual({ Name: '/p', WithDecryption: true });
    expect(ssm.commandCalls(DeleteParameterCommand)[0]!.args[0].input).toEqual({ Name: '/p' });
    expect(spec).toMatchObject({ mode: 'jit', runId: '7', jobId: '8', repo: 'acme/app' });
    expect(JSON.stringify(spec)).not.toContain('JITSECRET123');
    expect(vault.get('jit_config')).toBe('JITSECRET123');
  });

  it('retries throttling, then succeeds', async () => {
    ssm.on(GetParameterCommand).rejectsOnce(awsError('ThrottlingException', 400)).rejectsOnce(awsError('InternalServerError', 500)).resolves({ Parameter: { Value: '{"jit_config":"abcdefgh"}' } });
    await new SsmConfigStore(new SSMClient({ region: 'us-east-1' }), new SecretVault()).take('/p', fast);
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(3);
  });

  it('ParameterNotFound is terminal, with the parameter named', async () => {
    ssm.on(GetParameterCommand).rejects(awsError('ParameterNotFound', 400));
    await expect(new SsmConfigStore(new SSMClient({ region: 'us-east-1' }), new SecretVault()).take('/runs-fleet/x', fast)).rejects.toThrow(
      'runner config parameter /runs-fleet/x not found in SSM (ParameterNotFound)',
    );
    expect(ssm.commandCalls(GetParameterCommand)).toHaveLength(1);
  });

  it('a failed delete is a warning, not a failed boot', async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: '{"jit_config":"abcdefgh"}' } });
    ssm.on(DeleteParameterCommand).rejects(awsError('AccessDeniedException', 400));
    const warnings: string[] = [];
    await new SsmConfigStore(new SSMClient({ region: 'us-east-1' }), new SecretVault(), (m) => warnings.push(m)).take('/p', fast);
    expect(warnings[0]).toContain('could not delete runner config parameter /p');
  });
});

describe('terminateInstance', () => {
  const ec2 = mockClient(EC2Client);
  beforeEach(() => {
    ec2.reset();
  });

  it('asks for exactly this instance, retrying a 5xx', async () => {
    ec2.on(TerminateInstancesCommand).rejectsOnce(awsError('InternalError', 503)).resolves({});
    await terminateInstance(new EC2Client({ region: 'us-east-1' }), 'i-0abc', fast);
    expect(ec2.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input)).toEqual([{ InstanceIds: ['i-0abc'] }, { InstanceIds: ['i-0abc'] }]);
  });

  it('gives up on an authorization error at once', async () => {
    ec2.on(TerminateInstancesCommand).rejects(awsError('UnauthorizedOperation', 403));
    await expect(terminateInstance(new EC2Client({ region: 'us-east-1' }), 'i-0abc', fast)).rejects.toThrow('TerminateInstances for i-0abc failed after 1 attempt(s)');
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
