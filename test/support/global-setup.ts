import { assertMotoInstalled } from './moto.js';

/** Fail the whole run at once, with a clear message, when the AWS emulator is missing. */
export default async function globalSetup(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  assertMotoInstalled();
}
