import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { paymentRequestDecider, requestStreamId } from '@settle/domain';
import {
  MemoryClientRegistry,
  MemoryLockManager,
  SqlEventStore,
  createPgliteClient,
  handleCommand,
  loadAggregate,
  silentLogger,
} from '@settle/platform';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifier, createSafeFetch, signWebhook, WEBHOOK_ROTATION_GRACE_MS } from './notifier.js';

const OLD = `whsec_${Buffer.from('old-secret-old-secret-old-secret').toString('base64')}`;
const NEW = `whsec_${Buffer.from('new-secret-new-secret-new-secret').toString('base64')}`;
const PAYLOAD = JSON.stringify({ type: 'payment_request.settled', data: { id: 'r1' } });
const headersAt = (id: string, at: Date, signature: string) => ({
  'webhook-id': id,
  'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
  'webhook-signature': signature,
});

describe('outgoing webhook signatures (interop with the standardwebhooks package)', () => {
  const at = new Date();

  it('signs v1 HMAC-SHA256 over id.timestamp.body, verified by the reference verifier', () => {
    const signature = signWebhook({ webhookSecret: NEW }, 'msg_1', at, PAYLOAD);
    expect(signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(signature).toBe(new Webhook(NEW).sign('msg_1', at, PAYLOAD));
    expect(new Webhook(NEW).verify(PAYLOAD, headersAt('msg_1', at, signature))).toEqual(JSON.parse(PAYLOAD));
    expect(() => new Webhook(OLD).verify(PAYLOAD, headersAt('msg_1', at, signature))).toThrow(WebhookVerificationError);
  });

  it('sends both signatures during the 24 h after a rotation; either secret verifies', () => {
    const rotatedAt = new Date(at.getTime() - 23 * 3_600_000).toISOString();
    const signature = signWebhook({ webhookSecret: NEW, previousWebhookSecret: OLD, rotatedAt }, 'msg_2', at, PAYLOAD);
    const parts = signature.split(' ');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(new Webhook(NEW).sign('msg_2', at, PAYLOAD));
    expect(parts[1]).toBe(new Webhook(OLD).sign('msg_2', at, PAYLOAD));
    for (const secret of [NEW, OLD])
      expect(() => new Webhook(secret).verify(PAYLOAD, headersAt('msg_2', at, signature))).not.toThrow();
  });

  it('drops the old signature once the grace period is over', () => {
    const rotatedAt = new Date(at.getTime() - WEBHOOK_ROTATION_GRACE_MS);
    const signature = signWebhook({ webhookSecret: NEW, previousWebhookSecret: OLD, rotatedAt }, 'msg_3', at, PAYLOAD);
    expect(signature.split(' ')).toHaveLength(1);
    expect(() => new Webhook(OLD).verify(PAYLOAD, headersAt('msg_3', at, signature))).toThrow(WebhookVerificationError);
    expect(() => new Webhook(NEW).verify(PAYLOAD, headersAt('msg_3', at, signature))).not.toThrow();
  });

  it("honours the registry's { secret, validUntil } form", () => {
    const live = {
      webhookSecret: NEW,
      previousWebhookSecret: { secret: OLD, validUntil: new Date(at.getTime() + 1000).toISOString() },
    };
    expect(signWebhook(live, 'm', at, PAYLOAD).split(' ')).toHaveLength(2);
    const lapsed = { webhookSecret: NEW, previousWebhookSecret: { secret: OLD, validUntil: at.toISOString() } };
    expect(signWebhook(lapsed, 'm', at, PAYLOAD).split(' ')).toHaveLength(1);
  });

  it('ignores a rotation time in the future or unparseable', () => {
    for (const rotatedAt of [new Date(at.getTime() + 60_000), 'not a date'])
      expect(
        signWebhook({ webhookSecret: NEW, previousWebhookSecret: OLD, rotatedAt }, 'm', at, PAYLOAD).split(' '),
      ).toHaveLength(1);
  });
});

describe('notifier delivery', () => {
  let server: Server;
  let url: string;
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  let answers: number[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(answers.shift() ?? 200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function setup(forbidden: (address: string) => string | undefined) {
    const eventStore = await SqlEventStore.create(await createPgliteClient(undefined));
    const clients = new MemoryClientRegistry();
    const merchant = {
      id: 'm-rot',
      name: 'Rotating merchant',
      roles: ['merchant' as const],
      merchantId: 'm-rot',
      webhookSecret: NEW,
      secret: 's',
    };
    await clients.add(merchant);
    // The registry may not model rotations yet: set them on the stored client as the notifier reads it.
    Object.assign((await clients.get('m-rot'))!, {
      previousWebhookSecret: { secret: OLD, validUntil: new Date(Date.now() + 3_600_000).toISOString() },
    });
    const requestId = `r-${Math.random().toString(36).slice(2, 10)}`;
    await handleCommand(eventStore, requestStreamId(requestId), paymentRequestDecider, {
      type: 'RegisterRequest',
      data: {
        requestId,
        authId: 'auth_x',
        merchantId: 'm-rot',
        amount: 100,
        currency: 'EUR',
        reference: 'ref',
        callbackUrl: url,
        now: new Date().toISOString(),
      },
    });
    await handleCommand(eventStore, requestStreamId(requestId), paymentRequestDecider, {
      type: 'CancelRequest',
      data: { reason: 'test', by: 'm-rot' },
    });
    let clock = Date.now();
    const safeFetch = createSafeFetch({ forbiddenReason: forbidden });
    const notifier = createNotifier({
      eventStore,
      clients,
      locks: new MemoryLockManager(),
      logger: silentLogger(),
      delaysMs: [1000],
      maxAttempts: 3,
      fetch: safeFetch,
      now: () => new Date((clock += 5000)),
    });
    return { eventStore, requestId, notifier, close: async () => (await safeFetch.close(), await eventStore.close()) };
  }

  it('re-signs every attempt and sends both signatures during a rotation', async () => {
    const { eventStore, requestId, notifier, close } = await setup(() => undefined);
    answers = [500, 200];
    const before = received.length;
    await notifier.deliver(requestId);
    await notifier.deliver(requestId);
    const [first, second] = received.slice(before);
    expect(first && second).toBeTruthy();
    expect(first!.headers['webhook-id']).toBe(second!.headers['webhook-id']);
    expect(first!.headers['webhook-timestamp']).not.toBe(second!.headers['webhook-timestamp']);
    expect(first!.headers['webhook-signature']).not.toBe(second!.headers['webhook-signature']);
    for (const hit of [first!, second!]) {
      expect(String(hit.headers['webhook-signature']).split(' ')).toHaveLength(2);
      const headers = hit.headers as Record<string, string>;
      // The merchant verifies with whichever secret it has; the timestamp tolerance is theirs to keep.
      for (const secret of [NEW, OLD]) {
        const signed = Number(headers['webhook-timestamp']) * 1000;
        const wh = new Webhook(secret);
        const expected = wh.sign(headers['webhook-id']!, new Date(signed), hit.body);
        expect(headers['webhook-signature']!.split(' ')).toContain(expected);
      }
    }
    const { state } = await loadAggregate(eventStore, requestStreamId(requestId), paymentRequestDecider);
    expect(state.notified).toBe('CANCELLED');
    await close();
  }, 120_000);

  it('records a failed attempt and sends nothing when the address is refused at connect time', async () => {
    const { eventStore, requestId, notifier, close } = await setup((a) =>
      a.startsWith('127.') ? 'loopback' : undefined,
    );
    const before = received.length;
    await notifier.deliver(requestId);
    expect(received.length).toBe(before);
    const { state } = await loadAggregate(eventStore, requestStreamId(requestId), paymentRequestDecider);
    expect(state.notificationAttempts).toBe(1);
    expect(state.notified).not.toBe('CANCELLED');
    await close();
  });
});
