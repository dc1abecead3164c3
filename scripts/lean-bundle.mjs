// esbuild plugins that keep out of the bundle what the agent never runs. The bundle's source is
// held in memory for the whole job (scripts/build.mjs), and what is evaluated at load costs
// start-up time and heap.
//
// leanSdk: each AWS SDK client in the bundle holds only the operations the agent calls.
//
// A client package's CommonJS build (what esbuild picks for Node) is one module holding every
// command of its service and all their schemas: @aws-sdk/client-ec2 alone is 1.7 MB of the
// bundle, for one call (TerminateInstances). That source is kept in memory for the whole job,
// and all of it is evaluated when the client loads: the agent's RSS rose by 12-18 MB when it
// loaded EC2 for its last call. Each package also ships ES modules (dist-es/, one file a
// command), so for the packages in CLIENTS:
//
// 1. The agent's `import ... from '@aws-sdk/client-x'` resolves to a small module that
//    re-exports the listed names from dist-es/. A name the agent imports statically that is not
//    listed fails the build ("No matching export"), never the instance; a name read off
//    `await import(...)` would be undefined, so list it too.
// 2. dist-es/schemas/schemas_0.js still holds every schema of the service in one file, and
//    esbuild cannot drop the unused ones (their computed keys, `{ [_xN]: ... }`, count as side
//    effects). The plugin keeps the statements the listed schemas reach, plus every statement
//    that declares nothing (imports, the error registry), and drops the rest. The kept code is
//    the SDK's own, unchanged.
//
// Tests (ts-jest) and tsc see the real packages: this changes only what goes into dist/.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Per package: what the agent imports from it (file under dist-es/), and what the kept modules
 * import from schemas_0.js: the schemas of those commands' operations and the client's error
 * registry (runtimeConfig.shared.js). A schema left out fails the build ("No matching export").
 */
export const CLIENTS = {
  '@aws-sdk/client-ec2': {
    exports: { EC2Client: 'EC2Client.js', TerminateInstancesCommand: 'commands/TerminateInstancesCommand.js' },
    schemas: ['TerminateInstances$'],
  },
  '@aws-sdk/client-ssm': {
    exports: { SSMClient: 'SSMClient.js', GetParameterCommand: 'commands/GetParameterCommand.js', DeleteParameterCommand: 'commands/DeleteParameterCommand.js' },
    schemas: ['GetParameter$', 'DeleteParameter$'],
  },
  '@aws-sdk/client-cloudwatch-logs': {
    exports: {
      CloudWatchLogsClient: 'CloudWatchLogsClient.js',
      CreateLogStreamCommand: 'commands/CreateLogStreamCommand.js',
      PutLogEventsCommand: 'commands/PutLogEventsCommand.js',
    },
    schemas: ['CreateLogStream$', 'PutLogEvents$'],
  },
  '@aws-sdk/client-s3': {
    exports: {
      S3Client: 'S3Client.js',
      GetObjectCommand: 'commands/GetObjectCommand.js',
      PutObjectCommand: 'commands/PutObjectCommand.js',
      ListObjectsV2Command: 'commands/ListObjectsV2Command.js',
    },
    // CreateSession: S3Client's own S3 Express session middleware imports its command.
    schemas: ['GetObject$', 'PutObject$', 'ListObjectsV2$', 'CreateSession$'],
  },
  '@aws-sdk/client-sqs': {
    exports: { SQSClient: 'SQSClient.js', SendMessageCommand: 'commands/SendMessageCommand.js' },
    schemas: ['SendMessage$'],
  },
};
const SHARED_SCHEMAS = ['errorTypeRegistries'];

/**
 * zod's error messages in English only. zod/v4/locales/index.js re-exports ~40 languages (300 KB
 * of the bundle) for `z.locales`, which the agent never reads; zod's own default, English, is
 * imported by zod directly from locales/en.js and stays.
 */
export function leanZod() {
  return {
    name: 'lean-zod',
    setup(build) {
      build.onLoad({ filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
        contents: 'export { default as en } from "./en.js";\n',
        loader: 'js',
      }));
    },
  };
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export function leanSdk({ root, clients = CLIENTS }) {
  const require = createRequire(join(root, 'package.json'));
  const distEs = new Map(Object.keys(clients).map((name) => [name, join(dirname(require.resolve(`${name}/package.json`)), 'dist-es')]));
  const names = Object.keys(clients).map(escape).join('|');
  return {
    name: 'lean-sdk',
    setup(build) {
      build.onResolve({ filter: new RegExp(`^(${names})$`) }, (args) =>
        // Only our own sources: a client package is never imported by the SDK's other packages.
        args.importer.includes('node_modules') ? undefined : { path: args.path, namespace: 'lean-sdk' },
      );
      build.onLoad({ filter: /.*/, namespace: 'lean-sdk' }, (args) => ({
        contents: Object.entries(clients[args.path].exports)
          .map(([name, file]) => `export { ${name} } from ${JSON.stringify(join(distEs.get(args.path), file))};`)
          .join('\n'),
        resolveDir: distEs.get(args.path),
        loader: 'js',
      }));
      for (const [name, { schemas }] of Object.entries(clients)) {
        const file = join(distEs.get(name), 'schemas', 'schemas_0.js');
        build.onLoad({ filter: new RegExp(`^${escape(file)}$`) }, async (args) => ({
          contents: pruneSchemas(await readFile(args.path, 'utf8'), [...schemas, ...SHARED_SCHEMAS], `${name}/dist-es/schemas/schemas_0.js`),
          loader: 'js',
        }));
      }
    },
  };
}

/**
 * The statements of a generated schemas file that `roots` reach, in their order. A statement
 * starts on a line with no indent (the SDK's generator writes one declaration per statement)
 * and runs to the next. A statement that declares no name is kept whatever it uses.
 */
export function pruneSchemas(source, roots, file = 'schemas_0.js') {
  const statements = [];
  for (const line of source.split('\n')) {
    if (statements.length === 0 || /^[A-Za-z_$]/.test(line)) statements.push([line]);
    else statements.at(-1).push(line);
  }
  const declared = new Map();
  const parsed = statements.map((lines) => {
    const text = lines.join('\n');
    const name = /^(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=/.exec(text)?.[1];
    if (name) declared.set(name, text);
    return { text, name };
  });
  for (const root of roots) {
    if (!declared.has(root)) throw new Error(`lean-sdk: ${root} is not declared in ${file}: the SDK's layout changed, update scripts/lean-bundle.mjs`);
  }
  const keep = new Set();
  const pending = parsed.filter(({ name }) => !name).map(({ text }) => text);
  for (const root of roots) {
    keep.add(root);
    pending.push(declared.get(root));
  }
  while (pending.length > 0) {
    for (const [token] of pending.pop().matchAll(/[A-Za-z_$][\w$]*/g)) {
      if (!keep.has(token) && declared.has(token)) {
        keep.add(token);
        pending.push(declared.get(token));
      }
    }
  }
  return parsed.filter(({ name }) => !name || keep.has(name)).map(({ text }) => text).join('\n');
}
