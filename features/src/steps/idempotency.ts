import assert from 'node:assert/strict';
import { Then, When } from '@cucumber/cucumber';
import type { HttpAnswer } from '../support/http.js';
import { describe, register } from '../support/requests.js';
import { eventually } from '../support/wait.js';
import type { SettleWorld } from '../support/world.js';

interface Accepted {
  id?: string;
  authId?: string;
  status?: string;
}

When(
  'I register a payment request for {int} {word} with a fresh Idempotency-Key',
  async function (this: SettleWorld, amount: number, currency: string) {
    this.counters.set('registered', await registeredCount(this));
    const key = this.unique('key');
    const body = { amount, currency, reference: this.unique('idem'), description: 'features: idempotent registration' };
    this.idempotent = { key, body };
    const answer = await register(this, this.me, body, { 'Idempotency-Key': key });
    assert.equal(answer.status, 202, describe(answer));
    this.request = {
      id: answer.json.id!,
      amount,
      currency,
      reference: body.reference,
      owner: this.me,
      acceptedAt: Date.now(),
    };
  },
);

When('I send exactly the same registration again', async function (this: SettleWorld) {
  const { key, body } = this.idempotent!;
  await register(this, this.me, { ...body }, { 'Idempotency-Key': key });
});

Then('both answers are 202 with the same id and authId', function (this: SettleWorld) {
  const [first, second] = this.answers.slice(-2) as HttpAnswer<Accepted>[];
  assert.ok(first && second, 'two registrations were sent');
  assert.equal(first.status, 202);
  assert.equal(second.status, 202, `the replay: ${second.status} ${second.text}`);
  assert.equal(second.json.id, first.json.id);
  assert.equal(second.json.authId, first.json.authId);
});

When(
  'I send the same Idempotency-Key with the amount changed to {int}',
  async function (this: SettleWorld, amount: number) {
    const { key, body } = this.idempotent!;
    await register(this, this.me, { ...body, amount }, { 'Idempotency-Key': key });
  },
);

Then('exactly one payment request was registered for that reference', async function (this: SettleWorld) {
  const before = this.counters.get('registered');
  assert.notEqual(before, undefined);
  assert.equal(
    await registeredCount(this),
    before! + 1,
    'RequestRegistered events appended (settle_events_appended_total)',
  );
  const reference = this.theRequest.reference;
  await eventually('the operator to see the request in the list', 3_000, async () => {
    const list = await this.api.requestList('demo-operator', { merchantId: this.me });
    const matching = list.nodes.filter((n) => n.reference === reference);
    assert.deepEqual(
      matching.map((n) => n.id),
      [this.theRequest.id],
      `requests with reference ${reference}`,
    );
  });
});

/** RequestRegistered events appended so far, from the Prometheus counter on /metrics. */
export async function registeredCount(world: SettleWorld): Promise<number> {
  return world.api.metric('settle_events_appended_total', { type: 'RequestRegistered' });
}
