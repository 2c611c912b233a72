import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildSandbox } from './sandbox.js';
import { startCallbackReceiver, testLogger, type CallbackReceiver } from './testing.js';

const body = (key: string, amount = 100_000) => ({
  idempotencyKey: key,
  requestId: 'req-1',
  amount,
  currency: 'EUR',
  merchantId: 'm',
  reference: 'r',
});

describe('sandbox journal', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup() {
    const dir = await mkdtemp(join(tmpdir(), 'settle-sandbox-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const receiver: CallbackReceiver = await startCallbackReceiver();
    cleanups.push(() => receiver.close());
    const open = () =>
      buildSandbox({
        callbackUrl: receiver.url,
        captureDelayMs: 200,
        logger: testLogger(),
        stateFile: join(dir, 'journal.jsonl'),
      });
    return { receiver, open };
  }

  it('resends, after a restart, the capture callback it owed when it stopped', async () => {
    const { receiver, open } = await setup();
    const first = open();
    const answer = await first.inject({ method: 'POST', url: '/v1/authorizations', payload: body('req-1:1') });
    expect(answer.statusCode).toBe(201);
    await first.close(); // before the 200 ms capture delay: the callback was not sent
    expect(receiver.received).toHaveLength(0);

    const second = open();
    cleanups.push(() => second.close());
    const [callback] = await receiver.waitFor(1);
    expect(JSON.parse(callback!.body)).toMatchObject({
      type: 'payment.captured',
      data: { paymentId: answer.json().id, requestId: 'req-1' },
    });
  });

  it('answers a repeated idempotency key after a restart with its first answer, and owes no second callback', async () => {
    const { receiver, open } = await setup();
    const first = open();
    const a1 = await first.inject({ method: 'POST', url: '/v1/authorizations', payload: body('req-1:1') });
    await receiver.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    await first.close();

    const second = open();
    cleanups.push(() => second.close());
    const a2 = await second.inject({ method: 'POST', url: '/v1/authorizations', payload: body('req-1:1') });
    expect(a2.statusCode).toBe(201);
    expect(a2.json()).toEqual(a1.json());
    const stats = await second.inject({ method: 'GET', url: '/v1/stats' });
    expect(stats.json().byRequest).toEqual({ 'req-1': 1 });
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received).toHaveLength(1);
  });
});
