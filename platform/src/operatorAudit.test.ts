import { OPERATOR_AUDIT_STREAM } from '@settle/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWithContext } from './context.js';
import { newId } from './ids.js';
import { createPgliteClient } from './eventStore/pgliteClient.js';
import { SqlEventStore } from './eventStore/sqlEventStore.js';
import { readOperatorActions, recordOperatorAction } from './operatorAudit.js';

describe('operator audit trail', () => {
  let store: SqlEventStore;
  beforeAll(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined));
  });
  afterAll(() => store.close());

  it('records each action as an event on operator-audit, with the operator as actor, in order', async () => {
    await recordOperatorAction(store, { action: 'ParkedStreamSkipped', target: 'request-1', actor: 'ops-1' });
    await runWithContext({ correlationId: 'corr-7', actor: 'ops-2' }, () =>
      recordOperatorAction(store, { action: 'ProjectionRolledBack', target: 'requests', detail: { to: 3 } }),
    );
    const trail = await readOperatorActions(store);
    expect(trail.map((e) => [e.data.action, e.data.target, e.metadata.actor])).toEqual([
      ['ParkedStreamSkipped', 'request-1', 'ops-1'],
      ['ProjectionRolledBack', 'requests', 'ops-2'],
    ]);
    expect(trail[1]!.data.detail).toEqual({ to: 3 });
    expect(trail[1]!.metadata.correlationId).toBe('corr-7');
    expect(trail.every((e) => e.streamId === OPERATOR_AUDIT_STREAM)).toBe(true);
  });

  it('appends nothing new when an action is re-recorded with the same event id', async () => {
    const before = (await readOperatorActions(store)).length;
    const id = newId();
    const a = await recordOperatorAction(store, { action: 'ArchiveRun', target: 'x', eventId: id });
    const b = await recordOperatorAction(store, { action: 'ArchiveRun', target: 'x', eventId: id });
    expect(b).toBe(a);
    expect((await readOperatorActions(store)).length).toBe(before + 1);
  });
});
