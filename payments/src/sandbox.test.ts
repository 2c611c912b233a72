import type { FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildSandbox, SANDBOX_DEV_WEBHOOK_SECRET, type SandboxOptions, type SandboxStats } from './sandbox.js';
import { sleep, startCallbackReceiver, testLogger, type CallbackReceiver } from './testing.js';

let receiver: CallbackReceiver;
let sandbox: FastifyInstance;
let baseUrl: string;
let seq = 0;

async function start(opts: SandboxOptions = {}, statuses?: number[]): Promise<void> {
  receiver = await startCallbackReceiver(statuses);
  sandbox = buildSandbox({ callbackUrl: receiver.url, captureDelayMs: 20, slowMs: 300, logger: testLogger(), ...opts });
  baseUrl = await sandbox.listen({ port: 0, host: '127.0.0.1' });
}

function body(amount: number, over: Record<string, unknown> = {}) {
  seq += 1;
  return {
    idempotencyKey: `req-${seq}:1`,
    requestId: `req-${seq}`,
    amount,
    currency: 'EUR',
    merchantId: 'demo-merchant',
    reference: `ref-${seq}`,
    ...over,
  };
}

async function authorize(payload: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}/v1/authorizations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function stats(): Promise<SandboxStats> {
  return (await (await fetch(`${baseUrl}/v1/stats`)).json()) as SandboxStats;
}

afterEach(async () => {
  await sandbox?.close();
  await receiver?.close();
});

describe('sandbox gateway rules by amount', () => {
  beforeEach(() => start());

  it('authorises any other amount and reports the capture with a signed callback', async () => {
    const req = body(12_345);
    const { status, json } = await authorize(req);
    expect(status).toBe(201);
    expect(json).toEqual({ id: expect.stringMatching(/^pay_/), status: 'authorized' });

    const [callback] = await receiver.waitFor(1);
    const verified = new Webhook(SANDBOX_DEV_WEBHOOK_SECRET).verify(
      callback!.body,
      callback!.headers as Record<string, string>,
    );
    expect(verified).toEqual({
      type: 'payment.captured',
      id: callback!.headers['webhook-id'],
      data: {
        paymentId: json['id'],
        requestId: req.requestId,
        amount: 12_345,
        currency: 'EUR',
        capturedAt: expect.any(String),
      },
    });
    expect(callback!.headers['webhook-id']).toMatch(/^evt_/);
    expect(() =>
      new Webhook('whsec_' + Buffer.from('another-secret').toString('base64')).verify(
        callback!.body,
        callback!.headers as Record<string, string>,
      ),
    ).toThrow();
  });

  it('declines amounts ending in 402 and sends no callback', async () => {
    const { status, json } = await authorize(body(10_402));
    expect(status).toBe(402);
    expect(json).toEqual({ status: 'declined', reason: 'insufficient_funds' });
    await sleep(150);
    expect(receiver.received).toHaveLength(0);
  });

  it('fails the first two attempts of a request ending in 503, then authorises', async () => {
    const first = body(2_503);
    const attempt = (n: number) => authorize({ ...first, idempotencyKey: `${first.requestId}:${n}` });
    expect((await attempt(1)).status).toBe(503);
    expect((await attempt(2)).status).toBe(503);
    expect((await attempt(1)).status).toBe(503); // a repeated key is not a new attempt
    const third = await attempt(3);
    expect(third.status).toBe(201);
    expect(third.json['status']).toBe('authorized');
    expect((await stats()).byRequest[first.requestId]).toBe(3);
    await receiver.waitFor(1);
  });

  it('always fails amounts ending in 500', async () => {
    const first = body(7_500);
    for (let n = 1; n <= 4; n++) {
      expect((await authorize({ ...first, idempotencyKey: `${first.requestId}:${n}` })).status).toBe(500);
    }
  });

  it('answers amounts ending in 408 only after slowMs, without a capture', async () => {
    const started = Date.now();
    const { status, json } = await authorize(body(1_408));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(status).toBe(201);
    expect(json['status']).toBe('authorized');
    await sleep(100);
    expect(receiver.received).toHaveLength(0);
  });

  it('rejects bad input with 400', async () => {
    const good = body(1_000);
    const { idempotencyKey: _, ...withoutKey } = good;
    for (const bad of [
      withoutKey,
      { ...good, amount: -5 },
      { ...good, amount: 10.5 },
      { ...good, currency: 'eur' },
      { ...good, reference: '' },
    ]) {
      expect((await authorize(bad)).status).toBe(400);
    }
    expect((await stats()).authorizations).toBe(0);
  });
});

describe('sandbox idempotency', () => {
  beforeEach(() => start());

  it('answers a repeated key with the stored answer and captures once', async () => {
    const req = body(5_000);
    const answers = await Promise.all([authorize(req), authorize(req), authorize(req)]);
    expect(new Set(answers.map((a) => JSON.stringify(a)))).toHaveProperty('size', 1);
    expect(answers[0]!.status).toBe(201);
    await receiver.waitFor(1);
    await sleep(150);
    expect(receiver.received).toHaveLength(1);
    expect(await stats()).toEqual({ authorizations: 1, byRequest: { [req.requestId]: 1 } });
  });

  it('refuses a key reused for a different payment', async () => {
    const req = body(5_000);
    await authorize(req);
    const reused = await authorize({ ...req, amount: 6_000 });
    expect(reused.status).toBe(422);
    expect((await stats()).authorizations).toBe(1);
  });
});

describe('sandbox callbacks', () => {
  it('retries a refused callback with the same message id', async () => {
    await start({ callbackRetryDelaysMs: [20, 20] }, [500, 503, 204]);
    await authorize(body(3_000));
    const deliveries = await receiver.waitFor(3);
    const ids = new Set(deliveries.map((d) => d.headers['webhook-id']));
    expect(ids.size).toBe(1);
    const webhook = new Webhook(SANDBOX_DEV_WEBHOOK_SECRET);
    for (const d of deliveries) expect(() => webhook.verify(d.body, d.headers as Record<string, string>)).not.toThrow();
    await sleep(100);
    expect(receiver.received).toHaveLength(3);
  });

  it('gives up after its retry schedule', async () => {
    await start({ callbackRetryDelaysMs: [10, 10] }, [500]);
    await authorize(body(3_000));
    await receiver.waitFor(3);
    await sleep(150);
    expect(receiver.received).toHaveLength(3);
  });

  it('cancels pending callbacks and releases slow answers on close', async () => {
    await start({ captureDelayMs: 200, slowMs: 30_000 });
    await authorize(body(3_000));
    const slow = authorize(body(3_408)).catch(() => undefined);
    await sleep(50);
    const started = Date.now();
    await sandbox.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    await slow;
    await sleep(300);
    expect(receiver.received).toHaveLength(0);
  });
});
