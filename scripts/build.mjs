// Bundle the agent into one CommonJS file that runs with plain `node`, no node_modules.
//
// The bundle is ASCII only and whitespace-minified: V8 keeps a script's source in memory for
// as long as it runs, as Latin-1 (1 byte a character) when every character fits, else as UTF-16
// (2 bytes). One `→` in a kept comment or a `√` in a regex doubled the ~6.5 MB source held in the
// agent's heap for the whole job. esbuild escapes what is not ASCII (`charset: 'ascii'`) and
// this script fails when anything survives. The bundle is also the SEA binary's input (sea.mjs).
//
//   node scripts/build.mjs [--outfile path]   (default dist/runs-fleet-agent.cjs)
import { build } from 'esbuild';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { leanSdk, leanZod } from './lean-bundle.mjs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const at = process.argv.indexOf('--outfile');
const outfile = at === -1 ? 'dist/runs-fleet-agent.cjs' : process.argv[at + 1];
const started = Date.now();
await build({
  entryPoints: ['bin/cli.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // Whitespace only: names stay readable in stack traces.
  minifyWhitespace: true,
  charset: 'ascii',
  sourcemap: false,
  legalComments: 'none',
  define: {
    __AGENT_VERSION__: JSON.stringify(version),
    // import.meta.url is only used by version.ts's source fallback, dead in the bundle.
    'import.meta.url': '"file:///runs-fleet-agent.cjs"',
  },
  // Each AWS client with only the operations the agent calls (EC2 alone was 1.7 MB), zod in
  // English only: 4.6 MB to 2.1 MB (lean-bundle.mjs says why).
  plugins: [leanSdk({ root: fileURLToPath(new URL('..', import.meta.url)) }), leanZod()],
  // ws's optional native speedups are not needed.
  external: ['bufferutil', 'utf-8-validate'],
  logLevel: 'warning',
});
assertAscii(outfile);
const mb = (statSync(outfile).size / 1024 / 1024).toFixed(1);
console.log(`built ${outfile} (v${version}, ${mb} MB, ASCII) in ${Date.now() - started} ms`);

/** Fails the build on any byte above 0x7f: the bundle's source would be held as UTF-16. */
export function assertAscii(file) {
  const bytes = readFileSync(file);
  const at = bytes.findIndex((b) => b > 0x7f);
  if (at === -1) return;
  const line = bytes.subarray(0, at).toString('latin1').split('\n').length;
  const context = bytes.subarray(Math.max(0, at - 60), at + 20).toString('utf8');
  process.stderr.write(`build: ${file} is not ASCII (byte 0x${bytes[at].toString(16)} at offset ${at}, line ${line}): ...${context}...\n`);
  process.exit(1);
}
