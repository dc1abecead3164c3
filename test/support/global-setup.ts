import { spawnSync } from 'node:child_process';

/**
 * Fail the whole run at once, with a clear message, when the AWS emulator is missing.
 * Self-contained: jest loads this file outside its module mapper, so no relative imports.
 */
export default async function globalSetup(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const probe = spawnSync('python3', ['-c', 'import moto'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(
      'moto is not installed for python3: the AWS emulator the tests need is missing. ' +
        'Install it with `python3 -m pip install "moto[server]"`.\n' + (probe.stderr ?? ''),
    );
  }
}
