// Bundle the agent into one CommonJS file that runs with plain `node`, no node_modules.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const started = Date.now();
await build({
  entryPoints: ['bin/cli.ts'],
  outfile: 'dist/runs-fleet-agent.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minifyWhitespace: false,
  sourcemap: false,
  legalComments: 'none',
  define: {
    __AGENT_VERSION__: JSON.stringify(version),
    // import.meta.url is only used by version.ts's source fallback, dead in the bundle.
    'import.meta.url': '"file:///runs-fleet-agent.cjs"',
  },
  // ws's optional native speedups are not needed.
  external: ['bufferutil', 'utf-8-validate'],
  logLevel: 'warning',
});
console.log(`built dist/runs-fleet-agent.cjs (v${version}) in ${Date.now() - started} ms`);
