import { CircuitState } from 'cockatiel';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GatewayErrorCode } from './errors.js';
import { createGatewayClient, type GatewayAuthorization, type GatewayClient } from './gatewayClient.js';
import { buildSandbox, type SandboxStats } from './sandbox.js';
import { closedPort, startCallbackReceiver, testLogger, type CallbackReceiver } from './testing.js';

let receiver: CallbackReceiver;
let sandbox: FastifyInstance;
let baseUrl: string;
let gateway: GatewayClient;
let seq = 0;

function payment(amount: number, attempt = 1, requestId = `req-${++seq}`): GatewayAuthorization {
  return {
    idempotencyKey: `${requestId}:${attempt}`,
    requestId,
    amount,
    currency: 'GBP',
    merchantId: 'demo-merchant',
    reference: 'inv-1',
  };
}

async function stats(): Promise<SandboxStats> {
  return (await (await fetch(`${baseUrl}/v1/stats`)).json()) as SandboxStats;
}

beforeEach(async () => {
  receiver = await startCallbackReceiver();
  sandbox = buildSandbox({ callbackUrl: receiver.url, captureDelayMs: 10, slowMs: 2_000, logger: testLogger() });
  baseUrl = await sandbox.listen({ port: 0, host: '127.0.0.1' });
  gateway = createGatewayClient({ baseUrl, timeoutMs: 250, logger: testLogger() });
});

afterEach(async () => {
  await gateway.close();
  await sandbox.close();
  await receiver.close();
});

describe('gateway client', () => {
  it('maps 201 to authorized with the provider payment id', async () => {
    const result = await gateway.authorize(payment(1_000));
    expect(result).toEqual({ outcome: 'authorized', providerPaymentId: expect.stringMatching(/^pay_/) });
  });

  it('maps 402 to declined with the reason', async () => {
    expect(await gateway.authorize(payment(20_402))).toEqual({ outcome: 'declined', reason: 'insufficient_funds' });
  });

  it('maps 5xx to a transient GATEWAY_5XX', async () => {
    expect(await gateway.authorize(payment(1_500))).toMatchObject({
      outcome: 'transient',
      errorCode: GatewayErrorCode.FIVE_XX,
    });
    const flaky = payment(1_503);
    expect(await gateway.authorize(flaky)).toMatchObject({ outcome: 'transient', errorCode: 'GATEWAY_5XX' });
    expect(await gateway.authorize(payment(1_503, 2, flaky.requestId))).toMatchObject({ outcome: 'transient' });
    expect(await gateway.authorize(payment(1_503, 3, flaky.requestId))).toMatchObject({ outcome: 'authorized' });
  });

  it('times out a slow gateway with GATEWAY_TIMEOUT', async () => {
    const started = Date.now();
    const result = await gateway.authorize(payment(1_408));
    expect(result).toMatchObject({ outcome: 'transient', errorCode: GatewayErrorCode.TIMEOUT });
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('honours a shorter per-call timeout', async () => {
    const patient = createGatewayClient({ baseUrl, timeoutMs: 1_500, logger: testLogger() });
    try {
      const started = Date.now();
      expect(await patient.authorize(payment(2_408), { timeoutMs: 50 })).toMatchObject({
        errorCode: 'GATEWAY_TIMEOUT',
      });
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      await patient.close();
    }
  });

  it('reports an unreachable gateway as GATEWAY_UNREACHABLE', async () => {
    const nowhere = createGatewayClient({
      baseUrl: `http://127.0.0.1:${await closedPort()}`,
      timeoutMs: 500,
      logger: testLogger(),
    });
    try {
      expect(await nowhere.authorize(payment(1_000))).toMatchObject({
        outcome: 'transient',
        errorCode: GatewayErrorCode.UNREACHABLE,
      });
    } finally {
      await nowhere.close();
    }
  });
});

describe('gateway circuit breaker', () => {
  it('stays closed when one request keeps failing', async () => {
    const requestId = `req-${++seq}`;
    for (let attempt = 1; attempt <= 5; attempt++) {
      expect(await gateway.authorize(payment(4_500, attempt, requestId))).toMatchObject({ errorCode: 'GATEWAY_5XX' });
    }
    expect(gateway.breaker.state).toBe(CircuitState.Closed);
    expect(await gateway.authorize(payment(4_000))).toMatchObject({ outcome: 'authorized' });
    expect((await stats()).byRequest[requestId]).toBe(5);
  });

  it('opens when most of a real load fails, and then spares the gateway', async () => {
    for (let i = 0; i < 60 && gateway.breaker.state === CircuitState.Closed; i++) {
      await gateway.authorize(payment(9_500));
    }
    expect(gateway.breaker.state).toBe(CircuitState.Open);
    const before = (await stats()).authorizations;
    expect(await gateway.authorize(payment(9_000))).toMatchObject({
      outcome: 'transient',
      errorCode: GatewayErrorCode.CIRCUIT_OPEN,
    });
    expect((await stats()).authorizations).toBe(before);
  });
});
