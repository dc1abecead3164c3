/** Entry point of the bundle (`dist/runs-fleet-agent.cjs`). */
import { main } from './main.js';

main(process.argv.slice(2), {
  env: process.env,
  out: (text, encoding) => process.stdout.write(text, encoding ?? 'utf8'),
  err: (text) => process.stderr.write(text),
}).then(
  // Exit once what was written to stdout has left (the last log lines included).
  (code) => process.stdout.write('', () => process.exit(code)),
  (error: unknown) => {
    process.stderr.write(`runs-fleet-agent: fatal: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
