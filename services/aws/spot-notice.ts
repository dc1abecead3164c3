/**
 * Spot interruption notices from IMDS (`spot/instance-action`): 404 means none;
 * a JSON body `{"action":"terminate","time":"..."}` arrives about two minutes ahead.
 */
import type { MetadataClient } from './identity.js';

export interface SpotNotice {
  action: string;
  time: string;
}

export const SPOT_ACTION_PATH = 'latest/meta-data/spot/instance-action';

/** The current notice, or undefined. Throws on anything but 200/404 (caller logs and polls again). */
export async function readSpotNotice(client: MetadataClient): Promise<SpotNotice | undefined> {
  let body: string;
  try {
    body = await client.request(SPOT_ACTION_PATH, {});
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
  let parsed: { action?: unknown; time?: unknown };
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new Error(`IMDS ${SPOT_ACTION_PATH} returned something that is not JSON`);
  }
  if (typeof parsed.action !== 'string') throw new Error(`IMDS ${SPOT_ACTION_PATH} returned JSON without "action"`);
  return { action: parsed.action, time: typeof parsed.time === 'string' ? parsed.time : new Date().toISOString() };
}
