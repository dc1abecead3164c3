/**
 * scripts/lean-bundle.mjs: each AWS client in the bundle holds only the operations the agent
 * calls (EC2: TerminateInstances), and zod only its English messages. Pruning a generated
 * schemas file keeps what the roots reach and every statement that declares nothing, and fails
 * the build on a root it cannot find. That the kept clients still work is shown by the
 * end-to-end tests: the built agent reads SSM, ships to CloudWatch Logs, reports to SQS, uses
 * the S3 cache and terminates its instance, all in moto.
 */
import { describe, expect, it } from '@jest/globals';
import { build, type Plugin } from 'esbuild';
import { runInNewContext } from 'node:vm';
import { resolve } from 'node:path';
// @ts-expect-error: a build script in plain JavaScript, no declarations
import { leanSdk, leanZod, pruneSchemas } from '../scripts/lean-bundle.mjs';

const SOURCE = [
  'const _A = "Alpha";',
  'const _B = "Beta";',
  'const _U = "Unused";',
  'const n0 = "com.amazonaws.ec2";',
  'import { TypeRegistry } from "@smithy/core/schema";',
  'const _s_registry = new TypeRegistry(n0);',
  'export var Err$ = [-3, n0, "Err", 0, [], []];',
  '_s_registry.registerError(Err$, Error);',
  'export const errorTypeRegistries = [',
  '    _s_registry,',
  '];',
  'var List = [1, n0, _B,',
  '    0, () => Item$',
  '];',
  'export var Item$ = [3, n0, _B, 0, [_A], [0]];',
  'export var Op$ = [9, n0, _A,',
  '    0, () => List, { [_A]: 1 }',
  '];',
  'export var Other$ = [9, n0, _U,',
  '    0, () => Unreached$',
  '];',
  'export var Unreached$ = [3, n0, _U, 0, [], []];',
].join('\n');

describe('pruneSchemas', () => {
  const pruned: string = pruneSchemas(SOURCE, ['Op$', 'errorTypeRegistries']);

  it('keeps the roots and what they reach, in order, multi-line statements whole', () => {
    expect(pruned).toContain('export var Op$ = [9, n0, _A,\n    0, () => List, { [_A]: 1 }\n];');
    expect(pruned).toContain('var List = [1, n0, _B,\n    0, () => Item$\n];');
    expect(pruned).toContain('export var Item$');
    expect(pruned).toContain('const _A = "Alpha";');
    expect(pruned).toContain('const _B = "Beta";');
    expect(pruned.indexOf('var List')).toBeLessThan(pruned.indexOf('export var Op$'));
  });

  it('keeps every statement that declares nothing, and what they use', () => {
    expect(pruned).toContain('import { TypeRegistry } from "@smithy/core/schema";');
    expect(pruned).toContain('_s_registry.registerError(Err$, Error);');
    expect(pruned).toContain('const _s_registry = new TypeRegistry(n0);');
    expect(pruned).toContain('export var Err$');
    expect(pruned).toContain('export const errorTypeRegistries = [\n    _s_registry,\n];');
  });

  it('drops what nothing reaches', () => {
    expect(pruned).not.toContain('Other$');
    expect(pruned).not.toContain('Unreached$');
    expect(pruned).not.toContain('"Unused"');
  });

  it('fails, naming the root, when the SDK no longer declares it', () => {
    expect(() => pruneSchemas(SOURCE, ['Gone$'], 'schemas_0.js')).toThrow(/Gone\$ is not declared in schemas_0\.js/);
  });
});

async function bundleWith(source: string, plugins: Plugin[]): Promise<string> {
  const result = await build({
    stdin: { contents: source, resolveDir: resolve('services/aws'), sourcefile: 'entry.ts', loader: 'ts' },
    bundle: true,
    write: false,
    platform: 'node',
    format: 'cjs',
    logLevel: 'silent',
    plugins,
  });
  return result.outputFiles[0]!.text;
}

describe('the EC2 client in a bundle', () => {
  const bundle = async (source: string, lean = true) => {
    return bundleWith(source, lean ? [leanSdk({ root: resolve('.') })] : []);
  };

  const AGENT_USE = `export { EC2Client, TerminateInstancesCommand } from '@aws-sdk/client-ec2';`;

  it('holds TerminateInstances and no other EC2 operation, in less than half the size', async () => {
    const text = await bundle(AGENT_USE);
    expect(text).toContain('TerminateInstances$');
    expect(text).not.toMatch(/DescribeInstances|RunInstances|StopInstances/);
    const full = await bundle(AGENT_USE, false);
    expect(full).toMatch(/DescribeInstances/);
    expect(text.length).toBeLessThan(full.length / 2);
  });

  it('fails the build on a name the agent imports that the lean module does not export', async () => {
    await expect(bundle(`import { DescribeInstancesCommand } from '@aws-sdk/client-ec2'; console.log(DescribeInstancesCommand);`)).rejects.toThrow(
      /No matching export .* for import "DescribeInstancesCommand"/,
    );
  });
});

describe('zod in a bundle', () => {
  const SOURCE = `import { z } from 'zod'; module.exports = z.object({ n: z.number() }).safeParse({ n: 'x' }).error.issues[0].message;`;

  it('keeps its English messages and drops the other languages', async () => {
    const text = await bundleWith(SOURCE, [leanZod()]);
    const full = await bundleWith(SOURCE, []);
    const message = (code: string) => {
      const module = { exports: '' as unknown };
      runInNewContext(code, { module, exports: module.exports, require: (id: string) => { throw new Error(`unexpected require('${id}')`); } });
      return module.exports;
    };
    expect(message(text)).toBe('Invalid input: expected number, received string');
    expect(message(full)).toBe(message(text));
    expect(full).toContain('Nieprawid'); // Polish, from zod/v4/locales/pl.js
    expect(text).not.toContain('Nieprawid');
    expect(text.length).toBeLessThan(full.length * 0.7);
  });
});
