import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPaymentsClient,
  loadPaymentsPackage,
  PROTO_DIR,
  type AuthorizeRequest,
  type PaymentsHandlers,
} from './index.js';

// A stand-in server that echoes what it received, to check the wire shape both ways.
let server: grpc.Server;
let address: string;
const received: AuthorizeRequest[] = [];

beforeAll(async () => {
  server = new grpc.Server();
  const handlers: PaymentsHandlers = {
    Authorize(call, callback) {
      received.push(call.request);
      if (call.request.reference === 'unspecified') {
        return callback(null, {
          outcome: 'OUTCOME_UNSPECIFIED' as never,
          providerPaymentId: '',
          reason: '',
          errorCode: '',
          errorMessage: '',
        });
      }
      callback(null, {
        outcome: 'AUTHORIZED',
        providerPaymentId: `pay_${call.request.amount}`,
        reason: '',
        errorCode: '',
        errorMessage: '',
      });
    },
  };
  server.addService(loadPaymentsPackage().Payments.service, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  address = `127.0.0.1:${port}`;
});

afterAll(() => server.forceShutdown());

const req: AuthorizeRequest = {
  requestId: 'req-1',
  attempt: 2,
  idempotencyKey: 'req-1:2',
  amount: 999_999_999_999,
  currency: 'EUR',
  merchantId: 'm-1',
  reference: 'r-1',
};

describe('proto contracts', () => {
  it('finds the .proto files from PROTO_DIR', () => {
    expect(existsSync(join(PROTO_DIR, 'payments.proto'))).toBe(true);
    expect(existsSync(join(PROTO_DIR, 'grpc/health/v1/health.proto'))).toBe(true);
  });

  it('carries camelCase fields and int64 amounts as numbers both ways', async () => {
    const payments = createPaymentsClient(address);
    try {
      const reply = await payments.authorize(req, { deadlineMs: 2_000 });
      expect(received.at(-1)).toEqual(req);
      expect(reply).toEqual({
        outcome: 'AUTHORIZED',
        providerPaymentId: 'pay_999999999999',
        reason: '',
        errorCode: '',
        errorMessage: '',
      });
    } finally {
      payments.close();
    }
  });

  it('rejects a reply without a usable outcome', async () => {
    const payments = createPaymentsClient(address);
    try {
      await expect(payments.authorize({ ...req, reference: 'unspecified' }, { deadlineMs: 2_000 })).rejects.toThrow(
        /OUTCOME_UNSPECIFIED/,
      );
    } finally {
      payments.close();
    }
  });

  it('rejects with DEADLINE_EXCEEDED or UNAVAILABLE when nobody answers', async () => {
    const payments = createPaymentsClient('127.0.0.1:1');
    try {
      const err = (await payments.authorize(req, { deadlineMs: 200 }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE]).toContain(err.code);
    } finally {
      payments.close();
    }
  });
});
