import * as grpc from '@grpc/grpc-js';
import {
  createHealthClient,
  createPaymentsClient,
  loadHealthPackage,
  type AuthorizeRequest,
  type HealthCheckResponse,
  type PaymentsClient,
} from '@settle/proto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayClient, type GatewayClient } from './gatewayClient.js';
import { startPaymentsServer, type RunningPaymentsServer } from './paymentsService.js';
import { buildSandbox, type SandboxStats } from './sandbox.js';
import { startCallbackReceiver, testLogger, type CallbackReceiver } from './testing.js';

let receiver: CallbackReceiver;
let sandbox: FastifyInstance;
let sandboxUrl: string;
let gateway: GatewayClient;
let server: RunningPaymentsServer;
let address: string;
let payments: PaymentsClient;
let seq = 0;

function request(amount: number, over: Partial<AuthorizeRequest> = {}): AuthorizeRequest {
  const requestId = `req-${++seq}`;
  return {
    requestId,
    attempt: 1,
    idempotencyKey: `${requestId}:1`,
    amount,
    currency: 'USD',
    merchantId: 'demo-merchant',
    reference: 'order-7',
    ...over,
  };
}

beforeAll(async () => {
  receiver = await startCallbackReceiver();
  sandbox = buildSandbox({ callbackUrl: receiver.url, captureDelayMs: 10, slowMs: 2_000, logger: testLogger() });
  sandboxUrl = await sandbox.listen({ port: 0, host: '127.0.0.1' });
  gateway = createGatewayClient({ baseUrl: sandboxUrl, timeoutMs: 300, logger: testLogger() });
  server = await startPaymentsServer({ port: 0, gateway, logger: testLogger(), shutdownTimeoutMs: 1_000 });
  address = `127.0.0.1:${server.port}`;
  payments = createPaymentsClient(address);
});

afterAll(async () => {
  payments?.close();
  await server?.close();
  await gateway?.close();
  await sandbox?.close();
  await receiver?.close();
});

describe('Payments/Authorize over gRPC', () => {
  it('answers AUTHORIZED with the provider payment id', async () => {
    const reply = await payments.authorize(request(10_000), { deadlineMs: 2_000 });
    expect(reply).toEqual({
      outcome: 'AUTHORIZED',
      providerPaymentId: expect.stringMatching(/^pay_/),
      reason: '',
      errorCode: '',
      errorMessage: '',
    });
  });

  it('answers DECLINED with the reason', async () => {
    const reply = await payments.authorize(request(10_402), { deadlineMs: 2_000 });
    expect(reply).toMatchObject({ outcome: 'DECLINED', reason: 'insufficient_funds', providerPaymentId: '' });
  });

  it('answers TRANSIENT_FAILURE with the error code', async () => {
    const failing = await payments.authorize(request(10_500), { deadlineMs: 2_000 });
    expect(failing).toMatchObject({
      outcome: 'TRANSIENT_FAILURE',
      errorCode: 'GATEWAY_5XX',
      errorMessage: expect.stringContaining('500'),
    });
    const slow = await payments.authorize(request(10_408), { deadlineMs: 2_000 });
    expect(slow).toMatchObject({ outcome: 'TRANSIENT_FAILURE', errorCode: 'GATEWAY_TIMEOUT' });
  });

  it('answers before a caller deadline shorter than the gateway timeout', async () => {
    // A gateway client that would wait 1.9 s; the caller gives 1 s. The service answers at ~0.9 s
    // (a tenth kept as margin: a busy machine delays both sides), not DEADLINE_EXCEEDED.
    const patient = createGatewayClient({ baseUrl: sandboxUrl, timeoutMs: 1_900, logger: testLogger() });
    const own = await startPaymentsServer({
      port: 0,
      gateway: patient,
      logger: testLogger(),
      shutdownTimeoutMs: 1_000,
    });
    const client = createPaymentsClient(`127.0.0.1:${own.port}`);
    try {
      const started = performance.now();
      const reply = await client.authorize(request(11_408), { deadlineMs: 1_000 });
      expect(reply).toMatchObject({ outcome: 'TRANSIENT_FAILURE', errorCode: 'GATEWAY_TIMEOUT' });
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      client.close();
      await own.close();
      await patient.close();
    }
  });

  it('replays the first answer for a redelivered attempt', async () => {
    const req = request(12_000);
    const first = await payments.authorize(req, { deadlineMs: 2_000 });
    const again = await payments.authorize(req, { deadlineMs: 2_000 });
    expect(again).toEqual(first);
    const stats = (await (await fetch(`${sandboxUrl}/v1/stats`)).json()) as SandboxStats;
    expect(stats.byRequest[req.requestId]).toBe(1);
  });

  it('refuses a request without request_id with INVALID_ARGUMENT, before the gateway', async () => {
    const statsNow = async () => (await (await fetch(`${sandboxUrl}/v1/stats`)).json()) as SandboxStats;
    const before = await statsNow();
    const req = request(13_000, { requestId: '' });
    const err = await payments.authorize(req, { deadlineMs: 2_000 }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toContain('SETTLE_ERR_PAYMENTS_INVALID_REQUEST');
    expect(err?.details).toContain('request_id');
    expect(await statsNow()).toEqual(before);
  });
});

describe('grpc.health.v1.Health', () => {
  it('reports the server and the Payments service SERVING', async () => {
    const health = createHealthClient(address);
    try {
      expect(await health.check('', { deadlineMs: 2_000 })).toBe('SERVING');
      expect(await health.check('settle.payments.v1.Payments', { deadlineMs: 2_000 })).toBe('SERVING');
      await expect(health.check('no.such.Service', { deadlineMs: 2_000 })).rejects.toMatchObject({
        code: grpc.status.NOT_FOUND,
      });
    } finally {
      health.close();
    }
  });

  it('streams status changes to watchers', async () => {
    const { Health } = loadHealthPackage();
    const client = new Health(address, grpc.credentials.createInsecure());
    const seen: string[] = [];
    const call: grpc.ClientReadableStream<HealthCheckResponse> = client['Watch']({
      service: 'settle.payments.v1.Payments',
    });
    const statuses = new Promise<void>((resolve) =>
      call.on('data', (res: HealthCheckResponse) => {
        seen.push(res.status);
        if (seen.length === 1) server.health.setStatus('settle.payments.v1.Payments', 'NOT_SERVING');
        if (seen.length === 2) resolve();
      }),
    );
    call.on('error', () => undefined);
    await statuses;
    call.cancel();
    client.close();
    server.health.setStatus('settle.payments.v1.Payments', 'SERVING');
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
  });
});

describe('startPaymentsServer close()', () => {
  it('ends open watches and shuts down promptly', async () => {
    const own = await startPaymentsServer({ port: 0, gateway, logger: testLogger(), shutdownTimeoutMs: 5_000 });
    const { Health } = loadHealthPackage();
    const client = new Health(`127.0.0.1:${own.port}`, grpc.credentials.createInsecure());
    const seen: string[] = [];
    const call: grpc.ClientReadableStream<HealthCheckResponse> = client['Watch']({ service: '' });
    const ended = new Promise<void>((resolve) => {
      call.on('end', resolve);
      call.on('error', () => resolve());
    });
    call.on('data', (res: HealthCheckResponse) => seen.push(res.status));
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    await own.close();
    await ended;
    client.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
  });
});
