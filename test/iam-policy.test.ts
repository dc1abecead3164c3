/**
 * docs/iam-policy.json is least privilege: it grants exactly the AWS actions the agent's code
 * sends — every `new XxxCommand(` (and `paginateXxx`) imported from `@aws-sdk/client-*` in
 * services/, actors/ and bin/ — no more, no less, on narrow resources.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { credentialParameterName, parseSettings } from '../services/settings.js';
import { DEFAULT_RUNNER_LOGS_PREFIX, runnerLogKey } from '../services/logs/runner-logs.js';
import { runnerCacheKey, runnerManifestKey } from '../services/install/s3-cache.js';

const SOURCE_DIRS = ['services', 'actors', 'bin'];
const POLICY_FILE = 'docs/iam-policy.json';

/** `@aws-sdk/client-<name>` → IAM service prefix. A client missing here fails the test. */
const SERVICE_PREFIX: Record<string, string> = {
  ssm: 'ssm',
  sqs: 'sqs',
  ec2: 'ec2',
  s3: 's3',
  'cloudwatch-logs': 'logs',
};

/**
 * Permissions a call needs without being a command of its own, with the reason.
 * kms:Decrypt: GetParameter WithDecryption on a SecureString encrypted with a customer managed
 * key (the AWS managed aws/ssm key's policy already allows the account's principals).
 */
const IMPLIED: Record<string, { by: string; why: string }> = {
  'kms:Decrypt': { by: 'ssm:GetParameter', why: 'SecureString encrypted with a customer managed KMS key' },
};

/**
 * Actions the code sends that the instance role is not meant to have, each with the fallback that
 * makes it optional. Keep this short: everything else must be granted.
 */
const NOT_GRANTED: Record<string, string> = {
  's3:ListObjectsV2': "check-config's runner pin check lists the S3 cache only where the caller may (s3:ListBucket, an operator's role), else asks GitHub",
};

/** AWS SDK helpers that send commands the scanner cannot see: their use fails the test. */
const OPAQUE_PACKAGES = ['@aws-sdk/lib-storage', '@aws-sdk/lib-dynamodb', '@aws-sdk/s3-request-presigner'];

interface Use {
  action: string;
  file: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|cts|js|mjs)$/.test(entry) && !entry.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every AWS action one source file sends, plus problems that make the scan unreliable. */
export function scanSource(file: string, text: string): { uses: Use[]; problems: string[] } {
  const uses: Use[] = [];
  const problems: string[] = [];
  for (const pkg of OPAQUE_PACKAGES) {
    if (text.includes(`'${pkg}'`) || text.includes(`"${pkg}"`)) problems.push(`${file}: uses ${pkg}, whose AWS calls this scan cannot see`);
  }
  const importRe = /import\s+(type\s+)?([^;'"]*?)\s+from\s+['"]@aws-sdk\/client-([a-z0-9-]+)['"]/g;
  for (const m of text.matchAll(importRe)) {
    if (m[1]) continue; // import type { ... }: no runtime use
    const clause = m[2]!;
    const client = m[3]!;
    const prefix = SERVICE_PREFIX[client];
    const namespace = /\*\s+as\s+(\w+)/.exec(clause)?.[1];
    const named = /\{([\s\S]*)\}/.exec(clause)?.[1] ?? '';
    const locals: { local: string; imported: string }[] = [];
    for (const spec of named.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (spec.startsWith('type ')) continue;
      const [imported, local] = spec.split(/\s+as\s+/).map((s) => s.trim());
      locals.push({ imported: imported!, local: local ?? imported! });
    }
    const senders = locals.filter(({ imported }) => /Command$|^paginate[A-Z]/.test(imported));
    if ((senders.length > 0 || namespace) && !prefix) {
      problems.push(`${file}: @aws-sdk/client-${client} has no IAM prefix in SERVICE_PREFIX`);
      continue;
    }
    for (const { imported, local } of senders) {
      const action = imported.startsWith('paginate') ? imported.slice('paginate'.length) : imported.replace(/Command$/, '');
      const constructed = new RegExp(`new\\s+${local}\\s*\\(`).test(text);
      const paginated = imported.startsWith('paginate') && new RegExp(`\\b${local}\\s*\\(`).test(text);
      if (constructed || paginated) uses.push({ action: `${prefix}:${action}`, file });
      else if (new RegExp(`\\b${local}\\b`).test(text.replace(m[0], ''))) {
        problems.push(`${file}: ${imported} is used other than by \`new ${local}(\`: the scan cannot tell what it sends`);
      }
    }
    if (namespace) {
      for (const n of text.matchAll(new RegExp(`new\\s+${namespace}\\.(\\w+)Command\\s*\\(`, 'g'))) {
        uses.push({ action: `${prefix}:${n[1]}`, file });
      }
    }
  }
  return { uses, problems };
}

function scanCode(): { actions: Map<string, string[]>; problems: string[] } {
  const actions = new Map<string, string[]>();
  const problems: string[] = [];
  for (const dir of SOURCE_DIRS) {
    for (const file of sourceFiles(dir)) {
      const result = scanSource(file, readFileSync(file, 'utf8'));
      problems.push(...result.problems);
      for (const { action } of result.uses) actions.set(action, [...(actions.get(action) ?? []), file]);
    }
  }
  return { actions, problems };
}

interface Statement {
  Sid?: string;
  Effect: string;
  Action?: string | string[];
  NotAction?: unknown;
  Resource?: string | string[];
  NotResource?: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}
const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

const policy = JSON.parse(readFileSync(POLICY_FILE, 'utf8')) as { Version: string; Statement: Statement[] };
const allows = policy.Statement.filter((s) => s.Effect === 'Allow');
const denies = policy.Statement.filter((s) => s.Effect === 'Deny');
const granted = new Set(allows.flatMap((s) => list(s.Action)));
const statementsFor = (action: string) => allows.filter((s) => list(s.Action).includes(action));

describe('IAM policy (docs/iam-policy.json)', () => {
  const code = scanCode();

  it('the scan sees the whole code base (no opaque helpers, every client mapped)', () => {
    expect(code.problems).toEqual([]);
    // A scan that finds nothing would make the comparison below vacuous.
    expect(code.actions.size).toBeGreaterThanOrEqual(5);
  });

  it('grants every action the code sends (nothing missing)', () => {
    const missing = [...code.actions.keys()].filter((a) => !granted.has(a) && !NOT_GRANTED[a]).map((a) => `${a} (sent by ${code.actions.get(a)!.join(', ')})`);
    expect(missing).toEqual([]);
    for (const action of Object.keys(NOT_GRANTED)) {
      expect(code.actions.has(action)).toBe(true); // a stale exception would hide a real gap
      expect(granted.has(action)).toBe(false);
    }
  });

  it('grants nothing the code does not send (implied permissions aside, each justified)', () => {
    const extra = [...granted].filter((a) => !code.actions.has(a) && !(IMPLIED[a] && code.actions.has(IMPLIED[a].by)));
    expect(extra).toEqual([]);
    expect([...granted].sort()).toEqual(
      [...new Set([...code.actions.keys(), ...Object.keys(IMPLIED).filter((a) => granted.has(a))])].filter((a) => !NOT_GRANTED[a]).sort(),
    );
  });

  it('binds the instance credentials to their instance: used from any other address or VPC, everything is denied', () => {
    // What a job that got the role's credentials out (IMDS is blocked for it by default) could not do with them elsewhere.
    const binding = (key: string, variable: string) =>
      denies.find((s) => s.Condition?.StringNotEquals?.[key] === variable && s.Condition?.Null?.['ec2:SourceInstanceARN'] === 'false');
    for (const [key, variable] of [['aws:ec2InstanceSourcePrivateIPv4', '${aws:VpcSourceIp}'], ['aws:ec2InstanceSourceVPC', '${aws:SourceVpc}']]) {
      const s = binding(key!, variable!);
      expect(s).toBeDefined();
      expect([list(s!.Action), list(s!.Resource)]).toEqual([['*'], ['*']]);
      expect(s!.Condition?.BoolIfExists?.['aws:ViaAWSService']).toBe('false'); // AWS services acting for the instance are not blocked
    }
    expect(denies).toHaveLength(2);
  });

  it('is an identity policy of Allow statements with no wildcard action and no "*" resource (the Deny bindings aside)', () => {
    expect(policy.Version).toBe('2012-10-17');
    for (const s of allows) {
      expect(s.Effect).toBe('Allow');
      expect(s.NotAction).toBeUndefined();
      expect(s.NotResource).toBeUndefined();
      for (const action of list(s.Action)) expect(action).toMatch(/^[a-z0-9-]+:[A-Za-z]+$/);
      expect(list(s.Resource).length).toBeGreaterThan(0);
      for (const resource of list(s.Resource)) expect(resource).toMatch(/^arn:aws:[a-z0-9-]+:/);
    }
  });

  it('limits ec2:TerminateInstances to the calling instance itself', () => {
    const statements = statementsFor('ec2:TerminateInstances');
    expect(statements).toHaveLength(1);
    const [s] = statements;
    expect(list(s!.Action)).toEqual(['ec2:TerminateInstances']);
    expect(list(s!.Resource)).toEqual(['arn:aws:ec2:*:*:instance/*']);
    // The request's source instance (role credentials of that instance) must be the target
    // instance — the pattern of the AWS managed policy AWSEC2VssSnapshotPolicy.
    const cond = s!.Condition ?? {};
    const operator = Object.keys(cond).find((op) => /^Arn(Like|Equals)$/.test(op));
    expect(operator).toBeDefined();
    const [key, value] = Object.entries(cond[operator!]!)[0]!;
    expect(key.toLowerCase()).toBe('ec2:sourceinstancearn');
    expect(String(value)).toMatch(/^arn:aws:ec2:\*:\*:instance\/\$\{ec2:InstanceId\}$/i);
  });

  it('scopes SSM to the runs-fleet runner parameters the agent reads by default: the config and its credential', () => {
    const template = parseSettings({}).settings.ssmParameterTemplate;
    expect(template.startsWith('/runs-fleet/runners/')).toBe(true);
    expect(credentialParameterName(template).startsWith('/runs-fleet/runners/')).toBe(true);
    for (const action of ['ssm:GetParameter', 'ssm:DeleteParameter']) {
      for (const s of statementsFor(action)) expect(list(s.Resource)).toEqual(['arn:aws:ssm:*:*:parameter/runs-fleet/runners/*']);
    }
  });

  it('allows kms:Decrypt only through SSM, for the runner parameters', () => {
    for (const s of statementsFor('kms:Decrypt')) {
      expect(list(s.Action)).toEqual(['kms:Decrypt']);
      const like = s.Condition?.StringLike ?? {};
      expect(like['kms:ViaService']).toBe('ssm.*.amazonaws.com');
      expect(like['kms:EncryptionContext:PARAMETER_ARN']).toBe('arn:aws:ssm:*:*:parameter/runs-fleet/runners/*');
    }
  });

  it('scopes S3 writes to the runner cache prefix and the runner logs prefix, SQS to the queue, logs to the group', () => {
    expect(runnerCacheKey('2.330.0', 'x64').startsWith('runners/')).toBe(true);
    // The orchestrator's runner logs: {runner_logs_prefix or "runner-logs/"}{run}/{job}/{instance}/{file}.gz beside its Actions cache.
    expect(runnerLogKey({ runId: '1', jobId: '2', instanceId: 'i-1' }, 'Runner_1.log.gz').startsWith(`${DEFAULT_RUNNER_LOGS_PREFIX}`)).toBe(true);
    // No write to the runner cache by default (RUNS_FLEET_CACHE_UPLOAD is off), and never to its manifests.
    const puts = statementsFor('s3:PutObject').flatMap((s) => list(s.Resource)).sort();
    expect(puts).toEqual(['arn:aws:s3:::my-runs-fleet-actions-cache/runner-logs/*']);
    for (const s of statementsFor('s3:GetObject')) {
      for (const r of list(s.Resource)) expect(r).toMatch(/^arn:aws:s3:::my-runs-fleet-cache\/(runners|manifests\/runners|agent)\/\*$/);
    }
    expect(runnerManifestKey('2.330.0').startsWith('manifests/runners/')).toBe(true);
    for (const s of statementsFor('sqs:SendMessage')) expect(list(s.Resource)).toEqual(['arn:aws:sqs:*:*:runs-fleet-termination']);
    for (const action of ['logs:CreateLogStream', 'logs:PutLogEvents']) {
      for (const s of statementsFor(action)) {
        for (const r of list(s.Resource)) expect(r.startsWith('arn:aws:logs:*:*:log-group:/runs-fleet/agents')).toBe(true);
      }
    }
  });

  describe('the scanner itself', () => {
    it('finds named, renamed, namespaced and paginated commands; ignores type-only imports', () => {
      const src = [
        "import { GetParameterCommand, DeleteParameterCommand as Del, type SSMClient } from '@aws-sdk/client-ssm';",
        "import type { SendMessageCommandOutput } from '@aws-sdk/client-sqs';",
        "import * as logs from '@aws-sdk/client-cloudwatch-logs';",
        "import { paginateListObjectsV2 } from '@aws-sdk/client-s3';",
        'client.send(new GetParameterCommand({})); client.send(new Del({}));',
        'client.send(new logs.PutLogEventsCommand({})); for await (const p of paginateListObjectsV2({ client }, {})) {}',
      ].join('\n');
      const { uses, problems } = scanSource('x.ts', src);
      expect(problems).toEqual([]);
      expect(uses.map((u) => u.action).sort()).toEqual(['logs:PutLogEvents', 's3:ListObjectsV2', 'ssm:DeleteParameter', 'ssm:GetParameter']);
    });

    it('reports what it cannot see: unmapped clients, opaque helpers, commands not constructed', () => {
      const src = [
        "import { PutItemCommand } from '@aws-sdk/client-dynamodb';",
        "import { Upload } from '@aws-sdk/lib-storage';",
        "import { SendMessageCommand } from '@aws-sdk/client-sqs';",
        'const C = SendMessageCommand; client.send(new C({}));',
      ].join('\n');
      const { problems } = scanSource('y.ts', src);
      expect(problems).toHaveLength(3);
    });
  });
});
