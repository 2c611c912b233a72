import assert from 'node:assert/strict';
import { Given, Then, When, type DataTable } from '@cucumber/cucumber';
import {
  count,
  describe,
  nodeWithStatus,
  registerAccepted,
  snapshot,
  view,
  waitForStatus,
} from '../support/requests.js';
import { eventually, sleep } from '../support/wait.js';
import type { SettleWorld } from '../support/world.js';

Given('I am the merchant {string}', function (this: SettleWorld, clientId: string) {
  this.me = clientId;
});

When(
  'I register a payment request for {int} {word}',
  async function (this: SettleWorld, amount: number, currency: string) {
    await registerAccepted(this, this.me, amount, currency);
  },
);

Given(
  'I registered a payment request for {int} {word}',
  async function (this: SettleWorld, amount: number, currency: string) {
    await registerAccepted(this, this.me, amount, currency);
  },
);

Given(
  'the merchant {string} registered a payment request for {int} {word}',
  async function (this: SettleWorld, merchant: string, amount: number, currency: string) {
    await registerAccepted(this, merchant, amount, currency);
  },
);

Given(
  'I registered a payment request for {int} {word} that reached {word}',
  async function (this: SettleWorld, amount: number, currency: string, status: string) {
    const request = await registerAccepted(this, this.me, amount, currency);
    await waitForStatus(this, request, status, Date.now() + 20_000);
    this.snapshot = await snapshot(this, request, status);
  },
);

Then('it is accepted with status {word} and a Location for it', function (this: SettleWorld, status: string) {
  const answer = this.lastAnswer as typeof this.lastAnswer & {
    json: { id: string; authId: string; status: string; position: string };
  };
  assert.equal(answer.status, 202, describe(answer));
  assert.equal(answer.json.status, status);
  assert.equal(answer.headers.get('location'), `/v1/requests/${answer.json.id}`);
  assert.match(answer.json.authId, /^\S{16,}$/, 'authId should be an unguessable token');
  assert.match(answer.json.position, /^\d+$/);
});

Then('it is accepted with status {word}', function (this: SettleWorld, status: string) {
  const answer = this.lastAnswer as typeof this.lastAnswer & { json: { id: string; status: string } };
  assert.equal(answer.status, 202, describe(answer));
  assert.equal(answer.json.id, this.theRequest.id);
  assert.equal(answer.json.status, status);
});

Then(
  'the request reaches {word} within {int} seconds',
  async function (this: SettleWorld, status: string, seconds: number) {
    const request = this.theRequest;
    await waitForStatus(this, request, status, request.acceptedAt + seconds * 1000);
  },
);

Then(
  /^REST and GraphQL agree that it is (\w+) after (\d+) attempts?$/,
  async function (this: SettleWorld, status: string, attemptsText: string) {
    const attempts = Number(attemptsText);
    const request = this.theRequest;
    const { view: rest } = await view(this, request.id, request.owner);
    assert.equal(rest.status, status, 'REST status');
    assert.equal(rest.attempts, attempts, 'REST attempts');
    assert.equal(rest.amount, request.amount);
    assert.equal(rest.currency, request.currency);
    assert.equal(rest.reference, request.reference);
    assert.equal(rest.merchantId, request.owner);
    const node = await nodeWithStatus(this, request.id, request.owner, status);
    assert.equal(node.attempts, attempts, 'GraphQL attempts');
    assert.equal(node.version, rest.version, 'GraphQL version vs REST ETag revision');
    assert.equal(
      count(node, 'PaymentAuthorizationRequested'),
      attempts,
      `timeline: ${node.events.map((e) => e.type).join(', ')}`,
    );
  },
);

Then('its timeline holds each of these events exactly once:', async function (this: SettleWorld, table: DataTable) {
  const request = this.theRequest;
  const { view: rest } = await view(this, request.id, request.owner);
  const node = await nodeWithStatus(this, request.id, request.owner, rest.status);
  const types = node.events.map((e) => e.type);
  for (const [type] of table.raw() as [string][])
    assert.equal(count(node, type), 1, `${type} in timeline ${types.join(', ')}`);
  assert.equal(types[0], 'RequestRegistered', `the timeline starts with ${types[0]}`);
  const positions = node.events.map((e) => BigInt(e.position));
  assert.ok(
    positions.every((p, i) => i === 0 || p > positions[i - 1]!),
    `timeline positions should increase: ${node.events.map((e) => e.position).join(', ')}`,
  );
});

Then('its timeline ends with {word}', async function (this: SettleWorld, type: string) {
  const request = this.theRequest;
  const { view: rest } = await view(this, request.id, request.owner);
  const node = await nodeWithStatus(this, request.id, request.owner, rest.status);
  assert.equal(node.events.at(-1)?.type, type, `timeline: ${node.events.map((e) => e.type).join(', ')}`);
  assert.equal(count(node, type), 1);
});

Then(/^the gateway was asked to authorise it (\d+) times?$/, async function (this: SettleWorld, timesText: string) {
  const times = Number(timesText);
  const stats = await this.api.sandboxStats();
  assert.equal(
    stats.byRequest[this.theRequest.id] ?? 0,
    times,
    'distinct idempotency keys the gateway sandbox saw for the request',
  );
});

Given('the request is waiting to retry after a failed attempt', async function (this: SettleWorld) {
  const request = this.theRequest;
  const current = await eventually(
    'the first attempt to fail and a retry to be scheduled',
    10_000,
    async () => {
      const { view: v } = await view(this, request.id, request.owner);
      assert.equal(v.status, 'AUTHORIZING');
      assert.equal(v.attempts, 1);
      assert.ok(v.nextAttemptAt, 'no nextAttemptAt yet');
      return v;
    },
    20,
  );
  this.retryDueAt = Date.parse(current.nextAttemptAt!);
  assert.ok(
    this.retryDueAt - Date.now() > 200,
    `the retry is due too soon to cancel before it (${current.nextAttemptAt})`,
  );
});

When('I cancel the request', async function (this: SettleWorld) {
  const request = this.theRequest;
  this.last = await this.api.http('POST', `/v1/requests/${request.id}/cancel`, {
    as: this.me,
    body: { reason: 'customer changed their mind' },
  });
});

Then('once its retry was due, it is still CANCELLED after 1 attempt', async function (this: SettleWorld) {
  assert.ok(this.retryDueAt, 'no retry was scheduled');
  // The scheduler looks for due retries every 250 ms in development; give it several rounds.
  await sleep(Math.max(0, this.retryDueAt - Date.now()) + 1500);
  const request = this.theRequest;
  const { view: rest } = await view(this, request.id, request.owner);
  assert.equal(rest.status, 'CANCELLED');
  assert.equal(rest.attempts, 1);
  const node = await nodeWithStatus(this, request.id, request.owner, 'CANCELLED');
  assert.equal(
    count(node, 'PaymentAuthorizationRequested'),
    1,
    `timeline: ${node.events.map((e) => e.type).join(', ')}`,
  );
  assert.equal(node.events.at(-1)?.type, 'RequestCancelled');
});

Then('the request is still {word}', async function (this: SettleWorld, status: string) {
  const request = this.theRequest;
  const { view: rest } = await view(this, request.id, request.owner);
  assert.equal(rest.status, status);
  if (this.snapshot) assert.equal(rest.version, this.snapshot.version, 'the request changed');
});

Then('I get a {int} problem', function (this: SettleWorld, status: number) {
  assertProblem(this, status);
});

Then('I get a {int} problem naming the field {string}', function (this: SettleWorld, status: number, field: string) {
  const problem = assertProblem(this, status);
  assert.equal(problem.field, field, `problem.field in ${this.lastAnswer.text}`);
});

function assertProblem(world: SettleWorld, status: number): { field?: string; status: number } {
  const answer = world.lastAnswer as typeof world.lastAnswer & {
    json: { status: number; title?: string; type?: string; field?: string };
  };
  assert.equal(answer.status, status, describe(answer));
  assert.match(answer.contentType, /^application\/problem\+json/, describe(answer));
  assert.equal(answer.json.status, status);
  assert.ok(answer.json.title && answer.json.type, `a problem needs a type and a title: ${answer.text}`);
  return answer.json;
}
