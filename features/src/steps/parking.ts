import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Given, Then, When } from '@cucumber/cucumber';
import { nodeBinary, REPO_ROOT, SettleProcess, START_TIMEOUT_MS } from '../support/app.js';
import { describe, register, waitForStatus } from '../support/requests.js';
import { eventually } from '../support/wait.js';
import type { SettleWorld, TrackedRequest } from '../support/world.js';

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npx settle …` against the scenario's Settle, as an operator would run it (demo-operator by default). */
async function settleCli(world: SettleWorld, args: string[]): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('SETTLE_')),
  );
  env.SETTLE_URL = world.app.httpUrl;
  const child = spawn(nodeBinary(), [join(REPO_ROOT, 'cli', 'bin', 'settle.js'), ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}

const poisoned = (world: SettleWorld): TrackedRequest => {
  const request = world.batch.find((r) => r.reference.startsWith('poison-'));
  assert.ok(request, 'no poisoned request in this scenario');
  return request;
};

let lastRun: CliRun | undefined;

Given(
  'Settle runs with the requests projection failing on references starting {string}',
  { timeout: START_TIMEOUT_MS },
  async function (this: SettleWorld, prefix: string) {
    const app = await SettleProcess.start('parking', { env: { SETTLE_DEV_POISON_REFERENCE: prefix } });
    this.dedicated.push(app);
    this.use(app);
  },
);

When(
  'I register a payment request for {int} {word} with a reference starting {string}',
  async function (this: SettleWorld, amount: number, currency: string, prefix: string) {
    const reference = this.unique(prefix);
    const answer = await register(this, this.me, { amount, currency, reference });
    assert.equal(answer.status, 202, describe(answer));
    this.batch.push({ id: answer.json.id!, amount, currency, reference, owner: this.me, acceptedAt: Date.now() });
  },
);

Then(
  "{string} shows the poisoned request's stream parked in {string} with its error",
  async function (this: SettleWorld, command: string, projection: string) {
    assert.equal(command, 'npx settle dlq list');
    const stream = `request-${poisoned(this).id}`;
    const run = await eventually(`${stream} to be listed as parked`, 30_000, async () => {
      const r = await settleCli(this, ['dlq', 'list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const list = JSON.parse(r.stdout) as { parked: { owner: string; streamId: string; error: string }[] };
      assert.ok(
        list.parked.some((p) => p.streamId === stream),
        `parked: ${JSON.stringify(list.parked)}`,
      );
      return list;
    });
    assert.deepEqual(
      run.parked.map((p) => [p.owner, p.streamId]),
      [[projection, stream]],
      'only the poisoned stream, only in that projection',
    );
    assert.match(run.parked[0]!.error, /poison reference/);
    const table = await settleCli(this, ['dlq', 'list']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^Parked streams: 1\\n`));
    assert.ok(table.stdout.includes(stream), table.stdout);
  },
);

Then(
  'GraphQL still shows the poisoned request AUTHORIZING while REST shows it SETTLED',
  async function (this: SettleWorld) {
    const request = poisoned(this);
    // The event store (REST) moved on; the parked projection holds the stream's later events.
    await waitForStatus(this, request, 'SETTLED', Date.now() + 20_000);
    const node = await this.api.requestNode(this.me, request.id);
    assert.equal(node?.status, 'AUTHORIZING');
    assert.deepEqual(
      node.events.map((e) => e.type),
      ['RequestRegistered', 'PaymentAuthorizationRequested'],
    );
  },
);

When("I run {string} for the poisoned request's stream", async function (this: SettleWorld, command: string) {
  const [, , ...args] = command.split(' ');
  lastRun = await settleCli(this, [...args, `request-${poisoned(this).id}`]);
});

Then('the command exits with code {int} and says it failed again', function (this: SettleWorld, code: number) {
  assert.equal(lastRun?.code, code, `${lastRun?.stdout}\n${lastRun?.stderr}`);
  assert.match(lastRun.stderr, /failed again, still parked/);
});

Then('the command exits with code {int}', function (this: SettleWorld, code: number) {
  assert.equal(lastRun?.code, code, `${lastRun?.stdout}\n${lastRun?.stderr}`);
});

Then(
  'GraphQL shows the poisoned request SETTLED, its later events in order, without the failed one',
  async function (this: SettleWorld) {
    const request = poisoned(this);
    const node = await this.api.requestNode(this.me, request.id);
    assert.equal(node?.status, 'SETTLED');
    const types = node.events.map((e) => e.type);
    assert.ok(!types.includes('PaymentAuthorized'), types.join(', '));
    assert.deepEqual(types.slice(0, 2), ['RequestRegistered', 'PaymentAuthorizationRequested']);
    assert.ok(types.indexOf('CallbackReceived') < types.indexOf('PaymentSettled'), types.join(', '));
    const positions = node.events.map((e) => BigInt(e.position));
    assert.deepEqual(
      positions,
      [...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      'timeline in log order',
    );
  },
);

Then('{string} shows no parked stream', async function (this: SettleWorld, command: string) {
  assert.equal(command, 'npx settle dlq list');
  const run = await settleCli(this, ['dlq', 'list', '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual((JSON.parse(run.stdout) as { parked: unknown[] }).parked, []);
});
