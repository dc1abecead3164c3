import { readFileSync } from 'node:fs';

declare const __AGENT_VERSION__: string | undefined;

/** Set at build time by esbuild; read from package.json when running from source (tests). */
export const AGENT_VERSION: string =
  typeof __AGENT_VERSION__ === 'string'
    ? __AGENT_VERSION__
    : (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
