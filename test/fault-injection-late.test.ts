/**
 * Fault injection, part "late" ('draining', 'reporting', 'terminating'): SIGTERM, a failing dependency, a hang and
 * SIGKILL in each state, against the built agent. Prints the table of cases → outcome.
 */
import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { assertCase, CASES, runCase, startBad, TABLE_HEADER, tableRow, type Bad } from './support/fault-injection.js';
import { startMoto, type Moto } from './support/moto.js';

const STATES = ['draining', 'reporting', 'terminating'];
let moto: Moto;
let bad: Bad;
const rows: string[] = [];

beforeAll(async () => {
  moto = await startMoto();
  bad = await startBad();
});
afterAll(async () => {
  process.stdout.write(`\nfault injection (late):\n${[...TABLE_HEADER, ...rows].join('\n')}\n`);
  await Promise.all([moto.stop(), bad.down.close(), bad.hang.close()]);
});

describe('fault injection (late states)', () => {
  for (const c of CASES.filter((x) => STATES.includes(x.state))) {
    it(`${c.state} / ${c.fault}: ${c.what}`, async () => {
      const result = await runCase(c, moto, bad);
      try {
        assertCase(result);
        rows.push(tableRow(result, true));
      } catch (error) {
        rows.push(tableRow(result, false));
        throw error;
      }
    }, 60_000);
  }
});
