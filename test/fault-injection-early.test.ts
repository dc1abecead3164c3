/**
 * Fault injection, early states ('booting', 'downloading', 'registering', 'running'): SIGTERM, a failing dependency, a hang and
 * SIGKILL in each, against the built agent (cases in support/fault-injection.ts; two
 * files so that jest runs the halves in parallel).
 */
import { defineFaultSuite } from './support/fault-injection.js';

defineFaultSuite('early', ['booting', 'downloading', 'registering', 'running']);
