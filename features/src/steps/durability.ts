import assert from 'node:assert/strict';
import { Given, Then, When } from '@cucumber/cucumber';
import { SettleProcess, START_TIMEOUT_MS } from '../support/app.js';
import type { RequestNode } from '../support/http.js';
import { count, describe, register, snapshot, TERMINAL, TERMINAL_EVENTS, view } from '../support/requests.js';
import { eventually } from '../support/wait.js';
import type { SettleWorld, TrackedRequest } from '../support/world.js';

const expectedOutcome = (amount: number): string => (String(amount).endsWith('402') ? 'DECLINED' : 'SETTLED');

Given('Settle runs on a data directory of its own', { timeout: START_TIMEOUT_MS }, async function (this: SettleWorld) {
  const app = await SettleProcess.start('dedicated');
  this.dedicated.push(app);
  this.use(app);
});

When('Settle is stopped with Ctrl-C', async function (this: SettleWorld) {
  this.counters.set('exitCode', (await this.app.stop()) ?? -1);
});

Then('it exits with code {int}', function (this: SettleWorld, code: number) {
  assert.equal(this.counters.get('exitCode'), code, `Settle's output:\n${this.app.outputSinceMark()}`);
});

When('Settle is killed with SIGKILL at once', async function (this: SettleWorld) {
  await this.app.kill();
});

When(
  'Settle is started again on the same data directory',
  { timeout: START_TIMEOUT_MS },
  async function (this: SettleWorld) {
    await this.app.restart();
    this.api.forgetTokens();
  },
);

Then('the request is still SETTLED with the same timeline', async function (this: SettleWorld) {
  const before = this.snapshot!;
  const request = this.theRequest;
  const { answer, view: rest } = await view(this, request.id, request.owner);
  assert.equal(rest.status, 'SETTLED');
  assert.equal(rest.version, before.version);
  assert.equal(answer.headers.get('etag'), before.etag);
  const after = await snapshot(this, request, 'SETTLED');
  assert.deepEqual(after.events, before.events, 'the timeline over GraphQL');
});

When(
  /^(\d+) payment requests are answered 202, every (fifth )?one for an amount ending in 402$/,
  async function (this: SettleWorld, nText: string, fifth: string | undefined) {
    const n = Number(nText);
    const declined = (i: number) => !fifth || i % 5 === 4;
    const amounts = Array.from({ length: n }, (_, i) => 10_000 + i * 1_000 + (declined(i) ? 402 : 0));
    const answers = await Promise.all(
      amounts.map((amount) => register(this, this.me, { amount, currency: 'EUR', reference: this.unique('crash') })),
    );
    answers.forEach((answer, i) => {
      assert.equal(answer.status, 202, describe(answer));
      this.batch.push({
        id: answer.json.id!,
        amount: amounts[i]!,
        currency: 'EUR',
        reference: '',
        owner: this.me,
        acceptedAt: Date.now(),
      });
    });
  },
);

Then(
  'within {int} seconds every one of them reaches SETTLED, or DECLINED for an amount ending in 402',
  async function (this: SettleWorld, seconds: number) {
    const pending = new Map(this.batch.map((r) => [r.id, r]));
    const wrong: string[] = [];
    const statuses = new Map<string, string>();
    try {
      await eventually(
        `all ${this.batch.length} requests to reach their outcome`,
        seconds * 1000,
        async () => {
          await Promise.all(
            [...pending.values()].map(async (r: TrackedRequest) => {
              const { view: v } = await view(this, r.id, r.owner);
              statuses.set(r.id, `${v.status} after ${v.attempts} attempt(s)`);
              if (!TERMINAL.has(v.status)) return;
              pending.delete(r.id);
              if (v.status !== expectedOutcome(r.amount)) wrong.push(`${r.id} (${r.amount}) ended ${v.status}`);
            }),
          );
          assert.equal(pending.size, 0, `${pending.size} still pending`);
        },
        250,
      );
    } catch (error) {
      const stuck = [...pending.values()].map((r) => `${r.id} (${r.amount}): ${statuses.get(r.id)}`);
      throw new Error(`${(error as Error).message}\n${stuck.join('\n')}`);
    }
    assert.deepEqual(wrong, []);
  },
);

Then('no timeline holds a repeated event', async function (this: SettleWorld) {
  const problems: string[] = [];
  await Promise.all(
    this.batch.map(async (r) => {
      // REST is read again each time: the stream may still grow (a late callback or notification).
      const { node, rest } = await eventually(`GraphQL to catch up with ${r.id}`, 5_000, async () => {
        const { view: current } = await view(this, r.id, r.owner);
        const n = await this.api.requestNode(r.owner, r.id);
        assert.ok(n && n.version === current.version, `GraphQL at version ${n?.version}, REST at ${current.version}`);
        return { node: n, rest: current };
      });
      const issues = timelineIssues(node, rest.attempts);
      if (issues.length)
        problems.push(`${r.id} (${r.amount}): ${issues.join('; ')} — ${node.events.map((e) => e.type).join(', ')}`);
    }),
  );
  assert.deepEqual(problems, []);
});

function timelineIssues(node: RequestNode, attempts: number): string[] {
  const issues: string[] = [];
  if (count(node, 'RequestRegistered') !== 1) issues.push(`${count(node, 'RequestRegistered')} RequestRegistered`);
  const terminal = node.events.filter((e) => TERMINAL_EVENTS.has(e.type)).length;
  if (terminal !== 1) issues.push(`${terminal} terminal events`);
  // The decider numbers attempts 1, 2, …; as many requests as attempts means none was repeated.
  if (count(node, 'PaymentAuthorizationRequested') !== attempts)
    issues.push(
      `${count(node, 'PaymentAuthorizationRequested')} PaymentAuthorizationRequested for ${attempts} attempt(s)`,
    );
  if (count(node, 'PaymentAuthorized') > 1) issues.push(`${count(node, 'PaymentAuthorized')} PaymentAuthorized`);
  const positions = node.events.map((e) => e.position);
  if (new Set(positions).size !== positions.length) issues.push(`repeated positions ${positions.join(',')}`);
  return issues;
}

Then('the gateway saw each request at most once per authorisation attempt', async function (this: SettleWorld) {
  // The embedded sandbox restarted with Settle, so it counts the calls made since the restart.
  const stats = await this.api.sandboxStats();
  const problems: string[] = [];
  await Promise.all(
    this.batch.map(async (r) => {
      const { view: v } = await view(this, r.id, r.owner);
      const keys = stats.byRequest[r.id] ?? 0;
      if (keys > v.attempts) problems.push(`${r.id}: ${keys} idempotency keys for ${v.attempts} attempt(s)`);
    }),
  );
  assert.deepEqual(problems, []);
});
