import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Then, When } from '@cucumber/cucumber';
import { Webhook } from 'standardwebhooks';
import { describe, register } from '../support/requests.js';
import type { HttpAnswer } from '../support/http.js';
import type { SettleWorld } from '../support/world.js';
import { registeredCount } from './idempotency.js';

/** The development signing secret of the gateway sandbox's callbacks (as in steps/callbacks.ts). */
const SANDBOX_SECRET = 'whsec_c2V0dGxlLXNhbmRib3gtY2FsbGJhY2stc2VjcmV0LTAx';
const KIB = 1024;

/** What "nothing was appended to the event store" compares against. */
async function countBefore(world: SettleWorld): Promise<void> {
  world.counters.set('registered', await registeredCount(world));
  world.counters.set('listed', (await world.api.requestList('demo-operator', {}, 1)).totalCount);
}

When(
  'I register a payment request with the callback URL {string}',
  async function (this: SettleWorld, callbackUrl: string) {
    await countBefore(this);
    await register(this, this.me, { amount: 1000, currency: 'EUR', reference: this.unique('ssrf'), callbackUrl });
  },
);

When(
  'I register a payment request whose description makes the body larger than 64 KiB',
  async function (this: SettleWorld) {
    await countBefore(this);
    // Well under the server-wide 1 MiB: only the route's own limit can refuse it.
    await register(this, this.me, {
      amount: 1000,
      currency: 'EUR',
      reference: this.unique('big'),
      description: 'x'.repeat(64 * KIB + 1),
    });
  },
);

When(
  'I register a valid payment request with an Idempotency-Key of {int} characters',
  async function (this: SettleWorld, length: number) {
    await countBefore(this);
    await register(
      this,
      this.me,
      { amount: 1000, currency: 'EUR', reference: this.unique('key') },
      { 'Idempotency-Key': 'k'.repeat(length) },
    );
  },
);

When('I fetch the payment request with the id {string}', async function (this: SettleWorld, id: string) {
  this.last = await this.api.http('GET', `/v1/requests/${encodeURIComponent(id)}`, { as: this.me });
});

When('the same genuine payment.captured callback for it arrives twice', async function (this: SettleWorld) {
  const body = JSON.stringify({
    type: 'payment.captured',
    id: `evt_${randomBytes(8).toString('hex')}`,
    data: {
      paymentId: `pay_${randomBytes(8).toString('hex')}`,
      requestId: this.theRequest.id,
      amount: this.theRequest.amount,
      currency: 'EUR',
    },
  });
  const id = `msg_${randomBytes(8).toString('hex')}`;
  const at = new Date();
  const headers = {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(SANDBOX_SECRET).sign(id, at, body),
  };
  this.answers.length = 0;
  for (let i = 0; i < 2; i++) {
    const answer = await this.api.http('POST', '/v1/callbacks/sandbox', { rawBody: body, headers });
    this.answers.push(answer);
    this.last = answer;
  }
});

Then('both deliveries are acknowledged, the second as a duplicate', function (this: SettleWorld) {
  const [first, second] = this.answers as HttpAnswer<{ duplicate?: boolean }>[];
  assert.ok(first && second, 'two deliveries were expected');
  assert.equal(first.status, 200, describe(first));
  assert.equal(first.json.duplicate, false, describe(first));
  assert.equal(second.status, 200, describe(second));
  assert.equal(second.json.duplicate, true, describe(second));
});

const DEEP = (levels: number) =>
  `{ __type(name: "Request") { ${'ofType { '.repeat(levels)}name${' }'.repeat(levels)} } }`;
const ABUSES: Record<string, () => { body: unknown }> = {
  'a selection nested 40 levels deep': () => ({ body: { query: DEEP(40) } }),
  '500 aliases of one field': () => ({
    body: { query: `{ ${Array.from({ length: 500 }, (_, i) => `a${i}: __typename`).join(' ')} }` },
  }),
  '1000 copies of one field': () => ({ body: { query: `{ preferences { ${'userId '.repeat(1000)} } }` } }),
  'exponential introspection': () => ({
    body: {
      query: '{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }',
    },
  }),
  '10 queries in one batch': () => ({
    body: Array.from({ length: 10 }, () => ({ query: '{ requests(first: 100) { totalCount } }' })),
  }),
  'a page of 1000000 requests': () => ({ body: { query: '{ requests(first: 1000000) { nodes { id } } }' } }),
  'a subscription sent over HTTP': () => ({ body: { query: 'subscription { requestUpdated { id status } }' } }),
};

When('{string} sends a GraphQL request with {}', async function (this: SettleWorld, clientId: string, abuse: string) {
  const make = ABUSES[abuse];
  if (!make) throw new Error(`no such GraphQL abuse: ${abuse}`);
  this.last = await this.api.http('POST', '/graphql', { as: clientId, body: make().body });
});

Then('GraphQL refuses it with the code {string} and no 5xx', function (this: SettleWorld, code: string) {
  const answer = this.lastAnswer as HttpAnswer<{ data?: unknown; errors?: { extensions?: { code?: string } }[] }>;
  assert.ok(answer.status < 500, describe(answer));
  assert.ok(answer.json?.errors?.length, `no GraphQL errors: ${describe(answer)}`);
  const codes = answer.json.errors.map((e) => e.extensions?.code);
  assert.ok(
    codes.every((c) => typeof c === 'string'),
    `every error needs extensions.code: ${describe(answer)}`,
  );
  assert.ok(codes.includes(code), `expected ${code} among ${codes.join(', ')}`);
  assert.ok(
    !answer.json.data || Object.values(answer.json.data as object).every((v) => v === null),
    'no data may be answered',
  );
});
