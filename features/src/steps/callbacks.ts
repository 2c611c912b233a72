import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Then, When } from '@cucumber/cucumber';
import { Webhook } from 'standardwebhooks';
import { describe, snapshot, view } from '../support/requests.js';
import type { SettleWorld } from '../support/world.js';

/** The development signing secret of the gateway sandbox's callbacks (DESIGN.md, README). */
const SANDBOX_SECRET = 'whsec_c2V0dGxlLXNhbmRib3gtY2FsbGJhY2stc2VjcmV0LTAx';

function capturedEvent(requestId: string): string {
  return JSON.stringify({
    type: 'payment.captured',
    id: `evt_${randomBytes(8).toString('hex')}`,
    data: {
      paymentId: `pay_${randomBytes(8).toString('hex')}`,
      requestId,
      amount: 700402,
      currency: 'EUR',
      capturedAt: new Date().toISOString(),
    },
  });
}

function signed(secret: string, body: string, at = new Date()): Record<string, string> {
  const id = `msg_${randomBytes(8).toString('hex')}`;
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}

const FORGERIES: Record<string, (requestId: string) => { body: string; headers: Record<string, string> }> = {
  'signed with the sandbox secret': (id) => {
    const body = capturedEvent(id);
    return { body, headers: signed(SANDBOX_SECRET, body) };
  },
  'signed with the wrong secret': (id) => {
    const body = capturedEvent(id);
    return { body, headers: signed(`whsec_${randomBytes(24).toString('base64')}`, body) };
  },
  'with its body changed after signing': (id) => {
    const body = capturedEvent(id);
    return { body: body.replace('"amount":700402', '"amount":1'), headers: signed(SANDBOX_SECRET, body) };
  },
  'signed more than five minutes ago': (id) => {
    const body = capturedEvent(id);
    return { body, headers: signed(SANDBOX_SECRET, body, new Date(Date.now() - 10 * 60_000)) };
  },
  'with an empty signature': (id) => {
    const body = capturedEvent(id);
    return { body, headers: { ...signed(SANDBOX_SECRET, body), 'webhook-signature': 'v1,' } };
  },
  'without signature headers': (id) => ({ body: capturedEvent(id), headers: {} }),
};

When(/^a payment\.captured callback for it arrives (.+)$/, async function (this: SettleWorld, how: string) {
  const make = FORGERIES[how];
  if (!make) throw new Error(`no such callback: ${how}`);
  const { body, headers } = make(this.theRequest.id);
  this.last = await this.api.http('POST', '/v1/callbacks/sandbox', {
    rawBody: body,
    headers: { ...headers, 'content-type': 'application/json' },
  });
});

Then('the callback is refused with a 401 problem', function (this: SettleWorld) {
  const answer = this.lastAnswer;
  assert.equal(answer.status, 401, describe(answer));
  assert.match(answer.contentType, /^application\/problem\+json/, describe(answer));
});

Then('the callback is accepted', function (this: SettleWorld) {
  assert.equal(this.lastAnswer.status, 200, describe(this.lastAnswer));
});

Then("the request's status and timeline are unchanged", async function (this: SettleWorld) {
  const before = this.snapshot!;
  const { view: rest } = await view(this, this.theRequest.id, this.theRequest.owner);
  assert.equal(rest.version, before.version, 'the request has new events');
  const after = await snapshot(this, this.theRequest, before.status);
  assert.deepEqual(after.events, before.events);
});

Then('its timeline gains a CallbackReceived event', async function (this: SettleWorld) {
  const before = this.snapshot!;
  const after = await snapshot(this, this.theRequest, before.status);
  assert.equal(after.version, before.version + 1);
  assert.deepEqual(after.events.slice(0, -1), before.events);
  assert.equal(after.events.at(-1)?.type, 'CallbackReceived');
});
