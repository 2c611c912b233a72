import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEMO_MERCHANT, DEMO_MERCHANT_2, createHarness, type Harness } from './testing.js';

const UPDATED = /* GraphQL */ `
  subscription ($id: ID, $merchantId: ID) {
    requestUpdated(id: $id, merchantId: $merchantId) {
      id
      merchantId
      status
      amount
      events {
        type
      }
    }
  }
`;

interface Update {
  id: string;
  merchantId: string;
  status: string;
  amount: string;
}

let h: Harness;
let url: string;
const clients: Client[] = [];

beforeAll(async () => {
  h = await createHarness();
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const address = h.app.server.address();
  if (!address || typeof address === 'string') throw new Error('not listening on TCP');
  url = `ws://127.0.0.1:${address.port}/graphql`;
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await h.close();
});

function connect(connectionParams?: Record<string, unknown>): { client: Client; closed: Promise<unknown> } {
  let onClosed!: (event: unknown) => void;
  const closed = new Promise<unknown>((resolve) => (onClosed = resolve));
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    ...(connectionParams ? { connectionParams } : {}),
    on: { closed: (event) => onClosed(event) },
  });
  clients.push(client);
  return { client, closed };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function subscribe(client: Client, variables: Record<string, unknown> = {}) {
  const updates: Update[] = [];
  const state: { error?: unknown; done: boolean } = { done: false };
  client.subscribe<{ requestUpdated: Update }>(
    { query: UPDATED, variables },
    {
      next: (result) => {
        if (result.errors) state.error = result.errors;
        if (result.data) updates.push(result.data.requestUpdated);
      },
      error: (error) => (state.error = error),
      complete: () => (state.done = true),
    },
  );
  return { updates, state };
}

async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Registers requests for `merchantId` until `updates` shows one: only then is the server-side
 * subscription certainly listening (the protocol has no "subscribed" acknowledgement).
 */
async function probe(merchantId: string, updates: Update[]): Promise<void> {
  const deadline = Date.now() + 5000;
  const probes = new Set<string>();
  while (!updates.some((u) => probes.has(u.id))) {
    if (Date.now() > deadline) throw new Error('the subscription never started');
    const { id, position } = await h.register(merchantId);
    probes.add(id);
    await h.caughtUp(position);
    await sleep(20);
  }
}

describe('requestUpdated', () => {
  it('streams the status changes of the merchant’s own request, and none of another merchant’s', async () => {
    const mine = connect(bearer(h.token.merchant)).client;
    const theirs = connect(bearer(h.token.merchant2)).client;
    const { id, position } = await h.register(DEMO_MERCHANT, { amount: 4200 });
    await h.caughtUp(position);

    const one = subscribe(mine, { id });
    const all = subscribe(mine);
    const other = subscribe(theirs);
    await probe(DEMO_MERCHANT, all.updates);
    await probe(DEMO_MERCHANT_2, other.updates);
    await sleep(50);

    await h.caughtUp(await h.startAttempt(id));
    await h.caughtUp(await h.authorize(id));
    await h.caughtUp(await h.capture(id));
    await until(() => one.updates.length >= 3, 'three updates');

    expect(one.state.error).toBeUndefined();
    expect(one.updates.map((u) => u.status)).toEqual(['AUTHORIZING', 'AUTHORIZED', 'SETTLED']);
    expect(one.updates.every((u) => u.id === id && u.merchantId === DEMO_MERCHANT && u.amount === '4200')).toBe(true);
    expect(all.updates.filter((u) => u.id === id).map((u) => u.status)).toEqual([
      'AUTHORIZING',
      'AUTHORIZED',
      'SETTLED',
    ]);
    expect(all.updates.every((u) => u.merchantId === DEMO_MERCHANT)).toBe(true);

    // Deliveries are in order: once the other merchant sees its own later request, it has been
    // offered everything before it.
    const sentinel = await h.register(DEMO_MERCHANT_2);
    await until(() => other.updates.some((u) => u.id === sentinel.id), 'the sentinel');
    expect(other.updates.some((u) => u.id === id)).toBe(false);
    expect(other.updates.every((u) => u.merchantId === DEMO_MERCHANT_2)).toBe(true);
  });

  it('lets an operator follow every merchant, or one', async () => {
    const operator = connect(bearer(h.token.operator)).client;
    const all = subscribe(operator);
    const second = subscribe(operator, { merchantId: DEMO_MERCHANT_2 });
    await probe(DEMO_MERCHANT_2, all.updates);
    await until(() => second.updates.length > 0, 'the merchant-2 subscription');
    await sleep(50);

    const a = await h.register(DEMO_MERCHANT);
    const b = await h.register(DEMO_MERCHANT_2);
    await until(
      () => all.updates.some((u) => u.id === a.id) && all.updates.some((u) => u.id === b.id),
      'both requests',
    );
    await until(() => second.updates.some((u) => u.id === b.id), 'the merchant-2 request');
    expect(second.updates.every((u) => u.merchantId === DEMO_MERCHANT_2)).toBe(true);
  });

  it('refuses a merchant subscribing to another merchant', async () => {
    const { client } = connect(bearer(h.token.merchant));
    const sub = subscribe(client, { merchantId: DEMO_MERCHANT_2 });
    await until(() => sub.state.error !== undefined, 'the error');
    expect(sub.state.error).toEqual([
      expect.objectContaining({ extensions: expect.objectContaining({ code: 'FORBIDDEN' }) }),
    ]);
    expect(sub.updates).toEqual([]);
  });

  it('refuses a connection without a token, or with a bad one', async () => {
    for (const params of [undefined, { authorization: 'Bearer not-a-jwt' }, { authorization: h.token.merchant }]) {
      const { client, closed } = connect(params);
      let connected = false;
      client.on('connected', () => (connected = true));
      const sub = subscribe(client);
      await closed;
      await until(() => sub.state.error !== undefined, 'the refusal');
      expect(connected).toBe(false);
      expect(sub.updates).toEqual([]);
    }
  });
});
