/**
 * registering: JIT mode needs nothing run; token mode runs `config.sh` as the runner
 * user. Leaving the state aborts `signal`, which cancels config.sh.
 */
import type { Logger } from 'pino';
import { fromPromise } from 'xstate';
import type { RegisterInput, RegistrationResult } from '../machines/actor-contracts.js';
import { registerRunnerService, type RegistrationDeps } from '../services/runner/registration.js';
import type { SecretVault } from '../services/secrets.js';

export interface RegisterRunnerDeps extends Partial<Omit<RegistrationDeps, 'logger' | 'vault'>> {
  logger: Logger;
  vault: SecretVault;
}

export function registerRunner(deps: RegisterRunnerDeps) {
  return fromPromise<RegistrationResult, RegisterInput>(({ input, signal }) => registerRunnerService(input, deps, signal));
}
