import { randomUUID } from 'node:crypto';
import type { Decider, DomainEvent } from '@settle/domain';
import { describe, expect, it } from 'vitest';
import { handleCommand } from './commandHandler.js';
import { createPgliteClient } from './eventStore/pgliteClient.js';
import { SqlEventStore } from './eventStore/sqlEventStore.js';

type Added = DomainEvent<'Added', { n: number }>;
type Counter = { total: number };
type Command = { add: number } | { addIfBelow: { n: number; limit: number } };

/** A counter that refuses to pass 10, and adds "if below" only while under a limit (else nothing). */
const counter: Decider<Counter, Command, Added> = {
  initialState: () => ({ total: 0 }),
  decide(command, state) {
    if ('add' in command) {
      if (state.total + command.add > 10) throw new Error(`would pass 10 (at ${state.total})`);
      return [{ type: 'Added', data: { n: command.add } }];
    }
    return state.total < command.addIfBelow.limit ? [{ type: 'Added', data: { n: command.addIfBelow.n } }] : [];
  },
  evolve: (state, event) => ({ total: state.total + event.data.n }),
};

async function counting() {
  const store = await SqlEventStore.create(await createPgliteClient(undefined));
  let reads = 0;
  const readStream = store.readStream.bind(store);
  store.readStream = (...args: Parameters<SqlEventStore['readStream']>) => {
    reads++;
    return readStream(...args);
  };
  // A second store on the same database: another process, whose writes this one never saw.
  const other = await SqlEventStore.create(store.client);
  return { store, other, reads: () => reads };
}

describe('handleCommand: the state this process last wrote', () => {
  it('decides the next command on it without reading the stream', async () => {
    const { store, reads } = await counting();
    const id = `counter-${randomUUID()}`;
    await handleCommand(store, id, counter, { add: 1 });
    const before = reads();
    const result = await handleCommand(store, id, counter, { add: 2 });
    expect(reads()).toBe(before);
    expect(result).toMatchObject({ state: { total: 3 }, revision: 1 });
    expect((await store.readStream(id)).map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }]);
    await store.close();
  });

  it('is proven stale by the append when another process wrote meanwhile, and the command is decided again', async () => {
    const { store, other } = await counting();
    const id = `counter-${randomUUID()}`;
    await handleCommand(store, id, counter, { add: 1 });
    await handleCommand(other, id, counter, { add: 5 });
    const result = await handleCommand(store, id, counter, { add: 2 });
    expect(result).toMatchObject({ state: { total: 8 }, revision: 2 });
    expect((await store.readStream(id)).map((e) => e.data)).toEqual([{ n: 1 }, { n: 5 }, { n: 2 }]);
    await store.close();
  });

  it('never trusts it for a refusal or a no-op: those are decided again on the stream as read', async () => {
    const { store, other } = await counting();
    const id = `counter-${randomUUID()}`;
    await handleCommand(store, id, counter, { add: 9 }); // this process remembers 9
    await handleCommand(other, id, counter, { add: -5 }); // the stream is at 4
    // On the remembered 9 this would be refused (9 + 3 > 10); on the stream it is fine.
    const added = await handleCommand(store, id, counter, { add: 3 });
    expect(added).toMatchObject({ state: { total: 7 }, revision: 2 });
    await handleCommand(other, id, counter, { add: -4 }); // the stream is at 3, this process remembers 7
    // On the remembered 7 this is a no-op (not below 5); on the stream it adds.
    const noop = await handleCommand(store, id, counter, { addIfBelow: { n: 1, limit: 5 } });
    expect(noop.appended).toEqual([{ type: 'Added', data: { n: 1 } }]);
    expect((await store.readStream(id)).map((e) => e.data)).toEqual([
      { n: 9 },
      { n: -5 },
      { n: 3 },
      { n: -4 },
      { n: 1 },
    ]);
    // A refusal that holds on the stream too is still a refusal.
    await expect(handleCommand(store, id, counter, { add: 7 })).rejects.toThrow('would pass 10 (at 4)');
    await store.close();
  });
});
