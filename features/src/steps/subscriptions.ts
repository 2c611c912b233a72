import assert from 'node:assert/strict';
import { Given, Then, When } from '@cucumber/cucumber';
import { describe, nodeWithStatus, view } from '../support/requests.js';
import { UpdateSubscription } from '../support/subscriptions.js';
import { eventually, sleep } from '../support/wait.js';
import type { SettleWorld } from '../support/world.js';

async function subscribe(world: SettleWorld, clientId: string): Promise<void> {
  const token = await world.api.token(clientId);
  const sub = await UpdateSubscription.open(world.app.wsUrl, token, { id: world.theRequest.id });
  world.subscriptions.set(clientId, sub);
}

function subscriptionOf(world: SettleWorld, clientId: string): UpdateSubscription {
  const sub = world.subscriptions.get(clientId);
  if (!sub) throw new Error(`${clientId} has no subscription in this scenario`);
  return sub;
}

Given('{string} subscribed to updates of that request', async function (this: SettleWorld, clientId: string) {
  await subscribe(this, clientId);
});

When(
  "{string}'s subscription receives {word} within {int} seconds",
  async function (this: SettleWorld, clientId: string, status: string, seconds: number) {
    await subscriptionOf(this, clientId).waitForStatus(status, seconds * 1000);
  },
);

Then(
  'the status changes received end with {word}, {word}, {word}',
  function (this: SettleWorld, a: string, b: string, c: string) {
    const changes = subscriptionOf(this, this.me).statusChanges();
    assert.deepEqual(changes.slice(-3), [a, b, c], `status changes received: ${changes.join(' → ')}`);
    const last = subscriptionOf(this, this.me).updates.at(-1)!;
    assert.equal(last.attempts, 3, 'attempts in the SETTLED update');
  },
);

Then('every update received was for that request', function (this: SettleWorld) {
  const sub = subscriptionOf(this, this.me);
  assert.ok(sub.updates.length > 0);
  for (const update of sub.updates) {
    assert.equal(update.id, this.theRequest.id);
    assert.equal(update.merchantId, this.theRequest.owner);
  }
  assert.deepEqual(sub.errors, []);
});

Then('{string} gets 404 when fetching it over REST', async function (this: SettleWorld, clientId: string) {
  const answer = await this.api.http('GET', `/v1/requests/${this.theRequest.id}`, { as: clientId });
  assert.equal(answer.status, 404, describe(answer));
  assert.match(answer.contentType, /^application\/problem\+json/);
  assert.doesNotMatch(answer.text, new RegExp(this.theRequest.owner), 'the 404 must not reveal the owner');
});

Then('{string} gets nothing when asking GraphQL for it', async function (this: SettleWorld, clientId: string) {
  // Wait until the owner sees it over GraphQL, so a null for the other merchant is not just projection lag.
  await eventually('the owner to see the request over GraphQL', 3_000, async () =>
    assert.ok(await this.api.requestNode(this.theRequest.owner, this.theRequest.id)),
  );
  assert.equal(await this.api.requestNode(clientId, this.theRequest.id), null);
});

Then('{string} does not find it when listing requests', async function (this: SettleWorld, clientId: string) {
  const own = await this.api.requestList(clientId);
  assert.ok(
    !own.nodes.some((n) => n.id === this.theRequest.id),
    `${clientId}'s requests include ${this.theRequest.id}`,
  );
  const owner = this.theRequest.owner;
  const narrowed = await this.api.graphql<{ requests: { nodes: { id: string }[] } }>(
    clientId,
    `query ($m: ID) { requests(filter: { merchantId: $m }) { totalCount nodes { id } } }`,
    { m: owner },
  );
  assert.ok(narrowed.errors?.length, `asking for ${owner}'s requests should be refused: ${JSON.stringify(narrowed)}`);
  assert.ok(!JSON.stringify(narrowed.data ?? null).includes(this.theRequest.id));
});

Then('{string} gets 404 when cancelling it', async function (this: SettleWorld, clientId: string) {
  const answer = await this.api.http('POST', `/v1/requests/${this.theRequest.id}/cancel`, { as: clientId, body: {} });
  assert.equal(answer.status, 404, describe(answer));
  assert.match(answer.contentType, /^application\/problem\+json/);
  const { view: rest } = await view(this, this.theRequest.id, this.theRequest.owner);
  assert.notEqual(rest.status, 'CANCELLED');
});

Then(
  '{string} is refused a subscription to the updates of {string}',
  async function (this: SettleWorld, clientId: string, merchant: string) {
    const sub = await UpdateSubscription.open(this.app.wsUrl, await this.api.token(clientId), { merchantId: merchant });
    try {
      await eventually(`the subscription to ${merchant}'s updates to be refused`, 3_000, async () =>
        assert.ok(sub.errors.length > 0 || sub.completed),
      );
      assert.ok(sub.errors.length > 0, 'refused with an error');
      assert.deepEqual(sub.updates, []);
    } finally {
      await sub.close();
    }
  },
);

Then("{string}'s subscription received nothing", async function (this: SettleWorld, clientId: string) {
  // The owner's subscriber has seen SETTLED; anything for the other merchant would have arrived with it.
  await sleep(300);
  const sub = subscriptionOf(this, clientId);
  assert.deepEqual(sub.updates, [], `${clientId} received another merchant's updates`);
});

Then(
  '{string} sees it {word} over REST, GraphQL and in the list of requests',
  async function (this: SettleWorld, operator: string, status: string) {
    const { view: rest } = await view(this, this.theRequest.id, operator);
    assert.equal(rest.status, status);
    assert.equal(rest.merchantId, this.theRequest.owner);
    const node = await nodeWithStatus(this, this.theRequest.id, operator, status);
    assert.equal(node.merchantId, this.theRequest.owner);
    const list = await this.api.requestList(operator, { merchantId: this.theRequest.owner, status: [status] });
    assert.ok(
      list.nodes.some((n) => n.id === this.theRequest.id),
      `the operator's list does not include ${this.theRequest.id}`,
    );
  },
);
