import { createHmac, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandHarness, GATEWAY_SECRET, type CommandHarness } from '../fuzz/harness.js';

let h: CommandHarness;
let requestId: string;

beforeAll(async () => {
  h = await createCommandHarness();
  const res = await h.app.inject({
    method: 'POST',
    url: '/v1/requests',
    headers: { authorization: `Bearer ${h.token.merchant}` },
    payload: { amount: 700402, currency: 'EUR', reference: 'callbacks' },
  });
  requestId = res.json().id;
});
afterAll(() => h.close());

const captured = () =>
  JSON.stringify({
    type: 'payment.captured',
    id: `evt_${randomBytes(6).toString('hex')}`,
    data: { requestId, paymentId: 'pay_1' },
  });

function headers(body: string, opts: { secret?: string; at?: Date; id?: string } = {}): Record<string, string> {
  const id = opts.id ?? `msg_${randomBytes(8).toString('hex')}`;
  const at = opts.at ?? new Date();
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(opts.secret ?? GATEWAY_SECRET).sign(id, at, body),
  };
}

async function send(body: string, hdrs: Record<string, string>, provider = 'sandbox') {
  const res = await h.app.inject({
    method: 'POST',
    url: `/v1/callbacks/${provider}`,
    headers: { 'content-type': 'application/json', ...hdrs },
    payload: body,
  });
  return {
    status: res.statusCode,
    type: String(res.headers['content-type']),
    body: res.json() as { field?: string; duplicate?: boolean },
  };
}

/** The callback is refused with 401 problem+json and nothing is stored. */
async function unverified(body: string, hdrs: Record<string, string>) {
  const before = await h.head();
  const res = await send(body, hdrs);
  expect(res.status, JSON.stringify(res.body)).toBe(401);
  expect(res.type).toMatch(/^application\/problem\+json/);
  expect(res.body.field).toBe('webhook-signature');
  expect(await h.head()).toBe(before);
}

const minutes = (n: number) => new Date(Date.now() + n * 60_000);

describe('incoming gateway callbacks', () => {
  it('refuses forged, tampered, stale and future callbacks without changing state', async () => {
    const body = captured();
    await unverified(body, headers(body, { secret: `whsec_${randomBytes(24).toString('base64')}` }));
    await unverified(body.replace('pay_1', 'pay_2'), headers(body));
    await unverified(body, headers(body, { at: minutes(-5.5) }));
    await unverified(body, headers(body, { at: minutes(5.5) }));
    await unverified(body, {});
    await unverified(body, { ...headers(body), 'webhook-signature': 'v1,' });
    await unverified(body, {
      ...headers(body),
      'webhook-signature': 'v2,' + headers(body)['webhook-signature']!.slice(3),
    });
    // Length-checked: a prefix or an extension of the right signature is not the signature.
    const good = headers(body);
    await unverified(body, { ...good, 'webhook-signature': good['webhook-signature']!.slice(0, -4) });
    await unverified(body, { ...good, 'webhook-signature': `${good['webhook-signature']}AAAA` });
    // Signed with a timestamp other than the one sent.
    await unverified(body, { ...good, 'webhook-timestamp': String(Number(good['webhook-timestamp']) - 1) });
    await unverified(body, { ...good, 'webhook-id': `${good['webhook-id']}x` });
  });

  it('refuses a signed body that is not a gateway event, naming the field', async () => {
    const body = JSON.stringify({ type: 'payment.captured', data: { requestId: "' OR 1=1 --" } });
    const before = await h.head();
    const res = await send(body, headers(body));
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('data.requestId');
    expect(await h.head()).toBe(before);
  });

  it('refuses an unknown provider with 404', async () => {
    const body = captured();
    const res = await send(body, headers(body), 'evil');
    expect(res.status).toBe(404);
    expect(res.body.field).toBe('provider');
  });

  it('accepts within the ±5 min tolerance, a hand-made HMAC among several signatures, and ignores a replay', async () => {
    const body = captured();
    const id = `msg_${randomBytes(8).toString('hex')}`;
    const at = minutes(-4);
    const ts = String(Math.floor(at.getTime() / 1000));
    // Independent of the standardwebhooks package: v1 = base64(HMAC-SHA256(key, `${id}.${ts}.${body}`)).
    const key = Buffer.from(GATEWAY_SECRET.slice('whsec_'.length), 'base64');
    const mac = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
    const hdrs = {
      'webhook-id': id,
      'webhook-timestamp': ts,
      'webhook-signature': `v1,${randomBytes(32).toString('base64')} v1,${mac}`,
    };

    const before = await h.head();
    const first = await send(body, hdrs);
    expect(first.status).toBe(200);
    expect(first.body.duplicate).toBe(false);
    const after = await h.head();
    expect(after).toBeGreaterThan(before);

    const replay = await send(body, hdrs);
    expect(replay.status).toBe(200);
    expect(replay.body.duplicate).toBe(true);
    expect(await h.head()).toBe(after);
  });

  it('refuses bodies over 64 KiB with 413', async () => {
    const body = JSON.stringify({ type: 'payment.captured', data: { requestId, pad: 'x'.repeat(70_000) } });
    const before = await h.head();
    const res = await send(body, headers(body));
    expect(res.status).toBe(413);
    expect(await h.head()).toBe(before);
  });
});
