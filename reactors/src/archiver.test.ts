import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERR_REQUEST_NOT_FOUND, paymentRequestDecider, type EventMetadata } from '@settle/domain';
import {
  createPgliteClient,
  handleCommand,
  newId,
  readArchiveFile,
  SqlArchive,
  SqlEventStore,
  type StreamArchive,
} from '@settle/platform';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runArchive } from './archiver.js';

const meta: EventMetadata = { correlationId: 'c', causationId: 'c', actor: 'test' };
const DAY = 86_400_000;

/**
 * The archiver's crash and concurrency behaviour on the embedded store: whatever stops a run,
 * the next one finishes the job, and no stream is archived twice or left without its file.
 */
describe('runArchive', () => {
  let store: SqlEventStore;
  let archive: SqlArchive;
  const dir = mkdtempSync(join(tmpdir(), 'settle-archiver-'));
  // "now" for the archiver: the requests below are 10 days old from its point of view.
  const later = () => new Date(Date.now() + 10 * DAY);

  beforeAll(async () => {
    store = await SqlEventStore.create(await createPgliteClient(undefined));
    archive = await SqlArchive.create(store.client);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function request(terminal: boolean): Promise<string> {
    const id = newId();
    const events = [
      {
        type: 'RequestRegistered',
        data: { requestId: id, authId: `a-${id}`, merchantId: 'm', amount: 1, currency: 'EUR', reference: id },
      },
      ...(terminal ? [{ type: 'RequestCancelled', data: { reason: 'r', by: 'm' } }] : []),
    ];
    await store.append(
      `request-${id}`,
      events.map((e) => ({ id: newId(), ...e, metadata: meta })),
      { expectedRevision: 'no_stream' },
    );
    return `request-${id}`;
  }

  const typesOf = async (streamId: string) => (await store.readStream(streamId)).map((e) => e.type);
  const archivedCount = async (streamId: string) =>
    [...(await archive.readArchived(streamId)), ...(await store.readStream(streamId))].filter(
      (e) => e.type === 'RequestArchived',
    ).length;

  it('archives terminal requests past retention and leaves the others alone', async () => {
    const done = await request(true);
    const open = await request(false);
    const result = await runArchive({ eventStore: store, archive, dir, olderThanMs: 5 * DAY, now: later });
    expect(result.outcomes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ streamId: done, outcome: 'archived' }),
        { streamId: open, outcome: 'skipped', reason: 'status REGISTERED' },
      ]),
    );
    expect(await typesOf(done)).toEqual(['RequestArchived']);
    expect(await typesOf(open)).toEqual(['RequestRegistered']);
    // Within retention: nothing.
    const fresh = await request(true);
    const none = await runArchive({ eventStore: store, archive, dir, olderThanMs: 30 * DAY, now: later });
    expect(none.outcomes.find((o) => o.streamId === fresh)).toBeUndefined();
    expect(await typesOf(fresh)).toEqual(['RequestRegistered', 'RequestCancelled']);
  });

  it('an archived request refuses commands as an unknown one, appending nothing', async () => {
    const streamId = await request(true);
    await runArchive({ eventStore: store, archive, dir, olderThanMs: 5 * DAY, now: later });
    const head = await store.headPosition();
    await expect(
      handleCommand(store, streamId, paymentRequestDecider, {
        type: 'RecordNotification',
        data: { attempt: 1, forStatus: 'CANCELLED', webhookId: 'w', httpStatus: 200, ok: true },
      }),
    ).rejects.toMatchObject({ code: ERR_REQUEST_NOT_FOUND });
    expect(await store.headPosition()).toBe(head);
  });

  it('finishes a run that stopped after RequestArchived, whatever the retention', async () => {
    const streamId = await request(true);
    await store.append(
      streamId,
      [{ id: newId(), type: 'RequestArchived', data: { archivedAt: new Date().toISOString() }, metadata: meta }],
      { expectedRevision: 1 },
    );
    // The stream's last event is new: only the tombstone makes it a candidate.
    const result = await runArchive({ eventStore: store, archive, dir, olderThanMs: 365 * DAY });
    expect(result.outcomes).toContainEqual(expect.objectContaining({ streamId, outcome: 'archived' }));
    expect(await typesOf(streamId)).toEqual(['RequestArchived']);
    expect(await archivedCount(streamId)).toBe(1);
  });

  it('a failure before the truncation leaves the stream whole with its file complete; the next run completes it', async () => {
    const streamId = await request(true);
    const failing: StreamArchive = Object.assign(Object.create(archive) as SqlArchive, {
      truncate: () => Promise.reject(new Error('the process died here')),
    });
    const first = await runArchive({ eventStore: store, archive: failing, dir, olderThanMs: 5 * DAY, now: later });
    expect(first.outcomes).toContainEqual({ streamId, outcome: 'failed', error: 'the process died here' });
    expect(first.failed).toBeGreaterThan(0);
    expect(await typesOf(streamId)).toEqual(['RequestRegistered', 'RequestCancelled', 'RequestArchived']);
    const file = join(dir, `${streamId}.jsonl.gz`);
    expect((await readArchiveFile(file)).map((e) => e.type)).toEqual(await typesOf(streamId));

    const second = await runArchive({ eventStore: store, archive, dir, olderThanMs: 5 * DAY, now: later });
    expect(second.outcomes).toContainEqual(expect.objectContaining({ streamId, outcome: 'archived' }));
    expect(await archivedCount(streamId)).toBe(1);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('two runs at once archive each stream once', async () => {
    const streams = await Promise.all([1, 2, 3, 4, 5].map(() => request(true)));
    const [a, b] = await Promise.all(
      [0, 1].map(() => runArchive({ eventStore: store, archive, dir, olderThanMs: 5 * DAY, now: later })),
    );
    for (const streamId of streams) {
      expect(await archivedCount(streamId)).toBe(1);
      expect(await typesOf(streamId)).toEqual(['RequestArchived']);
      expect(existsSync(join(dir, `${streamId}.jsonl.gz`))).toBe(true);
      const outcomes = [...a!.outcomes, ...b!.outcomes].filter((o) => o.streamId === streamId);
      expect(outcomes.filter((o) => o.outcome === 'failed')).toEqual([]);
    }
  });

  it('--dry-run changes nothing and records nothing', async () => {
    const streamId = await request(true);
    const head = await store.headPosition();
    const result = await runArchive({
      eventStore: store,
      archive,
      dir,
      olderThanMs: 5 * DAY,
      now: later,
      dryRun: true,
    });
    expect(result.outcomes).toContainEqual(expect.objectContaining({ streamId, outcome: 'would_archive' }));
    expect(result.auditPosition).toBeUndefined();
    expect(await store.headPosition()).toBe(head);
    expect(existsSync(join(dir, `${streamId}.jsonl.gz`))).toBe(false);
  });
});
