import assert from 'node:assert/strict';
import { Then, When } from '@cucumber/cucumber';
import { describe, register } from '../support/requests.js';
import { sleep } from '../support/wait.js';
import type { SettleWorld } from '../support/world.js';
import { registeredCount } from './idempotency.js';

const MIB = 1024 * 1024;

async function countBefore(world: SettleWorld): Promise<void> {
  world.counters.set('registered', await registeredCount(world));
  world.counters.set('listed', (await world.api.requestList('demo-operator', {}, 1)).totalCount);
}

When('I register a payment request with the body {}', async function (this: SettleWorld, json: string) {
  await countBefore(this);
  const body = JSON.parse(json) as Record<string, unknown>;
  await register(this, this.me, body);
});

When(
  'I register a payment request whose description makes the body larger than 1 MiB',
  async function (this: SettleWorld) {
    await countBefore(this);
    const body = { amount: 1000, currency: 'EUR', reference: this.unique('huge'), description: 'x'.repeat(MIB + 1) };
    await register(this, this.me, body);
  },
);

Then('nothing was appended to the event store', async function (this: SettleWorld) {
  assert.ok(this.lastAnswer.status >= 400, describe(this.lastAnswer));
  assert.equal(
    await registeredCount(this),
    this.counters.get('registered'),
    'RequestRegistered events appended (settle_events_appended_total)',
  );
  // Give the projection time to show a request that should not exist.
  await sleep(300);
  assert.equal(
    (await this.api.requestList('demo-operator', {}, 1)).totalCount,
    this.counters.get('listed'),
    "the operator's totalCount of requests",
  );
});
