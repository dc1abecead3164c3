/** Signals and crashes become machine events instead of killing the process. */
import { describe, expect, it } from '@jest/globals';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { createActor, createMachine, type AnyEventObject } from 'xstate';
import { processWatcher } from '../actors/process-watcher.js';

function watch() {
  const target = new EventEmitter();
  const events: AnyEventObject[] = [];
  const lines: string[] = [];
  const logger = pino({ base: undefined }, { write: (l: string) => lines.push(l) });
  const parent = createMachine({
    invoke: { src: 'watcher' },
    on: { '*': { actions: ({ event }) => events.push(event) } },
  }).provide({ actors: { watcher: processWatcher({ logger, target: target as unknown as NodeJS.Process }) } });
  const actor = createActor(parent).start();
  return { target, events, lines, actor };
}

describe('processWatcher', () => {
  it('turns SIGTERM and SIGINT into SIGTERM events', () => {
    const { target, events } = watch();
    target.emit('SIGTERM');
    target.emit('SIGINT');
    expect(events).toEqual([
      { type: 'SIGTERM', signal: 'SIGTERM' },
      { type: 'SIGTERM', signal: 'SIGINT' },
    ]);
  });

  it('turns an uncaught exception and an unhandled rejection into PANIC, with the stack logged', () => {
    const { target, events, lines } = watch();
    target.emit('uncaughtException', new Error('kaboom'));
    target.emit('unhandledRejection', 'plain reason');
    expect(events.map((e) => [e.type, e.error])).toEqual([
      ['PANIC', 'kaboom'],
      ['PANIC', 'plain reason'],
    ]);
    expect(lines.join('')).toContain('kaboom');
    expect(lines.join('')).toMatch(/"stack":"Error: kaboom/);
  });

  it('removes its listeners when stopped', () => {
    const { target, actor } = watch();
    expect(target.listenerCount('SIGTERM')).toBe(1);
    actor.stop();
    for (const name of ['SIGTERM', 'SIGINT', 'uncaughtException', 'unhandledRejection']) expect(target.listenerCount(name)).toBe(0);
  });
});
