import { readOperatorActions, versionedCollection } from '@settle/platform';
import { REQUESTS } from '@settle/projections';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from './testing.js';

let h: Harness;
beforeAll(async () => {
  // Small rebuild batches: the rebuild takes many steps, so queries land in the middle of it.
  h = await createHarness({}, { rebuildBatchSize: 10 });
});
afterAll(async () => {
  await h.close();
});

interface Row {
  name: string;
  version: number;
  state: string;
  position: string;
  headPosition: string;
  lagEvents: number;
  lagSeconds: number;
}
const PROJECTIONS = '{ projections { name version state position headPosition lagEvents lagSeconds parkedStreams } }';
const requestsRows = async () => {
  const res = await h.gql<{ projections: Row[] }>(h.token.operator, PROJECTIONS);
  expect(res.body.errors).toBeUndefined();
  return { rows: res.body.data!.projections.filter((r) => r.name === 'requests'), extensions: res.body.extensions };
};
const totalCount = async () => {
  const res = await h.gql<{ requests: { totalCount: number } }>(
    h.token.operator,
    '{ requests(first: 1) { totalCount } }',
  );
  expect(res.body.errors).toBeUndefined();
  return res.body.data!.requests.totalCount;
};

describe('blue-green rebuilds over GraphQL', () => {
  it('rebuilds requests while requests keeps answering from the old version, cuts over, and rolls back', async () => {
    const n = 40;
    let position = 0;
    for (let i = 0; i < n; i++) {
      const { id } = await h.register('demo-merchant');
      position = i % 2 === 0 ? await h.settle(id) : await h.cancel(id);
    }
    await h.caughtUp(position);
    expect(await totalCount()).toBe(n);

    const started = await h.gql<{ rebuildProjection: Row }>(
      h.token.operator,
      'mutation { rebuildProjection(name: "requests") { name version state position headPosition lagEvents } }',
    );
    expect(started.body.errors).toBeUndefined();
    expect(started.body.data!.rebuildProjection).toMatchObject({ name: 'requests', version: 2, state: 'rebuilding' });

    // While it runs: the live version answers, never an error, never fewer requests; progress is visible.
    let sawProgress = false;
    let liveVersion = 1;
    for (let i = 0; liveVersion === 1; i++) {
      expect(await totalCount()).toBe(n);
      const { rows, extensions } = await requestsRows();
      liveVersion = rows.find((r) => !r.state.startsWith('rebuild'))!.version;
      const building = rows.find((r) => r.state === 'rebuilding');
      if (building) {
        expect(building.version).toBe(2);
        const [progress] = extensions!.rebuilds as { version: number; eventsPerSecond: number; headPosition: string }[];
        expect(progress).toMatchObject({ name: 'requests', version: 2, dryRun: false });
        expect(Number(progress!.headPosition)).toBeGreaterThanOrEqual(Number(building.position));
        if (Number(building.position) > 0) sawProgress = true;
      }
      if (i > 2000) throw new Error('the rebuild did not cut over');
    }
    expect(sawProgress).toBe(true);
    // After the cutover: the new version serves the same requests.
    expect(await totalCount()).toBe(n);
    expect(await h.readStore.collection(versionedCollection(REQUESTS, 2)).count()).toBe(n);
    const { rows } = await requestsRows();
    expect(rows).toEqual([expect.objectContaining({ version: 2, state: 'live', lagEvents: 0, lagSeconds: 0 })]);

    // New writes land in v2 (the projector continues it from its checkpoint).
    const late = await h.register('demo-merchant');
    await h.caughtUp(late.position);
    expect(await totalCount()).toBe(n + 1);

    const rolledBack = await h.gql<{ rollbackProjection: Row }>(
      h.token.operator,
      'mutation { rollbackProjection(name: "requests") { name version state } }',
    );
    expect(rolledBack.body.errors).toBeUndefined();
    expect(rolledBack.body.data!.rollbackProjection).toMatchObject({ name: 'requests', version: 1 });
    // v1 catches up with the request registered while v2 served.
    for (let i = 0; (await totalCount()) !== n + 1; i++) {
      if (i > 200) throw new Error('v1 did not catch up');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await requestsRows()).rows[0]).toMatchObject({ version: 1 });

    const audit = (await readOperatorActions(h.eventStore)).map((e) => [e.data.action, e.metadata.actor]);
    expect(audit).toEqual([
      ['ProjectionRebuildStarted', 'demo-operator'],
      ['ProjectionCutOver', 'demo-operator'],
      ['ProjectionRolledBack', 'demo-operator'],
    ]);
  });

  it('answers CONFLICT for a rollback with nothing to go back to, and for a second rebuild while one runs', async () => {
    const rollback = await h.gql(h.token.operator, 'mutation { rollbackProjection(name: "preferences") { name } }');
    expect(rollback.body.errors![0]).toMatchObject({ extensions: { code: 'CONFLICT' } });
    expect(rollback.body.errors![0]!.message).toContain('no previous version');
    const first = await h.gql(h.token.operator, 'mutation { rebuildProjection(name: "merchantStats") { version } }');
    expect(first.body.errors).toBeUndefined();
    const second = await h.gql(h.token.operator, 'mutation { rebuildProjection(name: "merchantStats") { version } }');
    expect(second.body.errors![0]).toMatchObject({ extensions: { code: 'CONFLICT' } });
  });
});
