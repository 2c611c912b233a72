import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { actOnDlq, formatDlq, isDeadLetterId, listDlq } from './dlq.js';
import { buildCli } from './main.js';
import { OperatorGraphQLError } from './operatorApi.js';
import { startSettle, type RunningSettle } from './start.js';
import { embeddedTestEnv } from './testing/processes.js';

describe('isDeadLetterId', () => {
  it('tells a Kafka topic/partition/offset from a stream id', () => {
    expect(isDeadLetterId('settle.request.dlq/0/12')).toBe(true);
    expect(isDeadLetterId('request-7f1c')).toBe(false);
    expect(isDeadLetterId('a/b/c')).toBe(false);
  });
});

describe('settle dlq against a running Settle (embedded parts, poison reference)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'settle-dlq-'));
  let settle: RunningSettle | undefined;
  let url = '';
  let env: { url: string; clientId: string; clientSecret: string };
  let merchantToken = '';

  const http = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return (await res.json()) as Record<string, unknown>;
  };
  const register = async (reference: string) =>
    (
      await http(
        'POST',
        '/v1/requests',
        { amount: 1000, currency: 'EUR', reference },
        { authorization: `Bearer ${merchantToken}`, 'idempotency-key': reference },
      )
    ).id as string;
  const request = async (id: string) => {
    const res = await http(
      'POST',
      '/graphql',
      { query: `{ request(id: "${id}") { status events { type } } }` },
      { authorization: `Bearer ${merchantToken}` },
    );
    const r = (res.data as { request: { status: string; events: { type: string }[] } | null }).request;
    return r ? { status: r.status, types: r.events.map((e) => e.type) } : null;
  };

  beforeAll(async () => {
    const settleEnv = await embeddedTestEnv(dataDir, { SETTLE_DEV_POISON_REFERENCE: 'poison-' });
    url = `http://127.0.0.1:${settleEnv.SETTLE_HTTP_PORT}`;
    env = { url, clientId: 'demo-operator', clientSecret: 'demo-secret' };
    settle = await startSettle({ env: settleEnv });
    const token = await http('POST', '/v1/auth/token', {
      grant_type: 'client_credentials',
      client_id: 'demo-merchant',
      client_secret: 'demo-secret',
    });
    merchantToken = token.access_token as string;
  }, 120_000);

  afterAll(async () => {
    await settle?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('lists the parked stream with its error while other requests settle; skip resumes it in order', async () => {
    const poisoned = await register('poison-1');
    const fine = await register('order-1');
    await vi.waitFor(async () => expect((await request(fine))?.status).toBe('SETTLED'), {
      timeout: 30_000,
      interval: 250,
    });
    await vi.waitFor(
      async () => expect((await listDlq(env)).parked.map((p) => p.streamId)).toEqual([`request-${poisoned}`]),
      { timeout: 30_000, interval: 250 },
    );
    const list = await listDlq(env);
    expect(list.parked[0]).toMatchObject({ owner: 'requests', eventType: 'PaymentAuthorized', attempts: 1 });
    expect(list.parked[0]!.error).toMatch(/poison reference poison-1/);
    expect(list.deadLetters).toEqual([]); // the embedded bus parks; it has no Kafka DLQ
    const table = formatDlq(list);
    expect(table).toMatch(/^Parked streams: 1\nOWNER\s+STREAM\s+EVENT\s+POSITION\s+ATTEMPTS\s+PARKED AT\s+ERROR\n/);
    expect(table).toContain(`request-${poisoned}`);
    expect(table).toMatch(/Kafka dead letters: 0$/);
    // Held: the later events (the capture callback, the settlement) wait behind the failed one.
    await vi.waitFor(async () => expect((await request(poisoned))?.status).toBe('AUTHORIZING'));

    // Retrying without a fix fails again: exit code 1, still parked.
    const again = await actOnDlq('retry', `request-${poisoned}`, env);
    expect(again.ok).toBe(false);
    expect(again.message).toMatch(/failed again, still parked .*poison reference/);

    const skipped = await actOnDlq('skip', `request-${poisoned}`, env);
    expect(skipped).toEqual({ ok: true, message: `request-${poisoned}: skipped; it flows again` });
    const resumed = await request(poisoned);
    expect(resumed?.status).toBe('SETTLED');
    expect(resumed?.types).toEqual(
      expect.arrayContaining(['RequestRegistered', 'PaymentAuthorizationRequested', 'PaymentSettled']),
    );
    expect(resumed?.types).not.toContain('PaymentAuthorized');
    expect(resumed!.types.indexOf('CallbackReceived')).toBeLessThan(resumed!.types.indexOf('PaymentSettled'));
    expect((await listDlq(env)).parked).toEqual([]);
  }, 90_000);

  it('fails clearly, with a non-zero exit code, for what is not parked or not there', async () => {
    await expect(actOnDlq('skip', 'request-nope', env)).rejects.toThrow(/NOT_FOUND: stream request-nope is not parked/);
    await expect(actOnDlq('retry', 'settle.request.dlq/0/1', env)).rejects.toThrow(OperatorGraphQLError);
    await expect(listDlq({ ...env, clientId: 'demo-merchant' })).rejects.toThrow(/FORBIDDEN/);
    await expect(listDlq({ ...env, url: 'http://127.0.0.1:9' })).rejects.toThrow(/cannot reach Settle/);

    const previous = { url: process.env.SETTLE_URL, code: process.exitCode };
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      process.env.SETTLE_URL = url;
      await buildCli().parseAsync(['node', 'settle', 'dlq', 'retry', 'request-nope']);
      expect(process.exitCode).toBe(1);
      expect(errors).toHaveBeenCalledWith(expect.stringMatching(/^settle dlq retry: retryParked: NOT_FOUND/));
    } finally {
      errors.mockRestore();
      process.exitCode = previous.code;
      if (previous.url === undefined) delete process.env.SETTLE_URL;
      else process.env.SETTLE_URL = previous.url;
    }
  });
});
