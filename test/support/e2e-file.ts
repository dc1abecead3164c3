/**
 * The frame of an end-to-end test file: one moto server for the file and, after each test,
 * every message the world's queue received decoded as the orchestrator does (none may be
 * misread), then the world closed.
 */
import { afterAll, afterEach, beforeAll, expect } from '@jest/globals';
import type { World } from './agent-world.js';
import { startMoto, type Moto } from './moto.js';
import { misread, orchestratorVerdicts } from './orchestrator.js';

export function e2eFile(currentWorld: () => World | undefined, forget: () => void = () => {}): { readonly moto: Moto } {
  let moto: Moto | undefined;
  beforeAll(async () => {
    moto = await startMoto();
  });
  afterAll(async () => {
    await moto?.stop();
  });
  afterEach(async () => {
    const world = currentWorld();
    forget();
    const verdicts = world ? await orchestratorVerdicts(world) : [];
    await world?.close();
    expect(misread(verdicts)).toEqual([]);
  });
  return {
    get moto() {
      if (!moto) throw new Error('moto is not started yet (use it inside a test)');
      return moto;
    },
  };
}
