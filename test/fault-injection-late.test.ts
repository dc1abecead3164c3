/**
 * Fault injection, late states ('draining', 'reporting', 'terminating'): SIGTERM, a failing dependency, a hang and
 * SIGKILL in each, against the built agent (cases in support/fault-injection.ts; two
 * files so that jest runs the halves in parallel).
 */
import { defineFaultSuite } from './support/fault-injection.js';

defineFaultSuite('late', ['draining', 'reporting', 'terminating']);
