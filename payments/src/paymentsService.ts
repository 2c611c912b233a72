import * as grpc from '@grpc/grpc-js';
import {
  loadHealthPackage,
  loadPaymentsPackage,
  PAYMENTS_SERVICE_NAME,
  type AuthorizeReply,
  type PaymentsHandlers,
} from '@settle/proto';
import type { Logger } from 'pino';
import { ERR_INTERNAL, ERR_INVALID_REQUEST, ERR_SHUTDOWN_FORCED } from './errors.js';
import type { GatewayClient, GatewayResult } from './gatewayClient.js';
import { createHealthService, type HealthService } from './healthService.js';
import { validateAuthorizeRequest } from './validateAuthorizeRequest.js';

export const DEFAULT_GRPC_PORT = 50051;

export interface PaymentsServerOptions {
  gateway: GatewayClient;
  logger: Logger;
}

/**
 * Leaves the caller time to receive our answer before its own deadline fires: a tenth of the time
 * it gave us, at least 50 ms and at most 500 ms (a busy event loop on either side eats into it).
 */
const deadlineMargin = (ms: number): number => Math.min(500, Math.max(50, ms / 10));

function toReply(result: GatewayResult): AuthorizeReply {
  const empty = { providerPaymentId: '', reason: '', errorCode: '', errorMessage: '' };
  switch (result.outcome) {
    case 'authorized':
      return { ...empty, outcome: 'AUTHORIZED', providerPaymentId: result.providerPaymentId };
    case 'declined':
      return { ...empty, outcome: 'DECLINED', reason: result.reason };
    case 'transient':
      return { ...empty, outcome: 'TRANSIENT_FAILURE', errorCode: result.errorCode, errorMessage: result.message };
  }
}

/** Milliseconds left before the caller's deadline, or undefined when it set none. */
function remainingMs(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return undefined;
  const left = at - Date.now();
  return Math.floor(left - deadlineMargin(left));
}

/**
 * The gRPC payments service: Payments/Authorize over the gateway client, plus the
 * standard health service. Idempotency is the gateway's: the request's idempotency key
 * is passed through, so a redelivered attempt gets the first answer.
 */
export function createPaymentsServer({ gateway, logger }: PaymentsServerOptions): {
  server: grpc.Server;
  health: HealthService;
} {
  const server = new grpc.Server();
  const health = createHealthService({ '': 'SERVING', [PAYMENTS_SERVICE_NAME]: 'SERVING' });

  const handlers: PaymentsHandlers = {
    Authorize(call, callback) {
      const req = call.request;
      const problems = validateAuthorizeRequest(req);
      if (problems.length > 0) {
        return callback({
          code: grpc.status.INVALID_ARGUMENT,
          details: `${ERR_INVALID_REQUEST}: ${problems.join('; ')}`,
        });
      }
      const log = logger.child({ requestId: req.requestId, attempt: req.attempt, idempotencyKey: req.idempotencyKey });
      const { idempotencyKey, requestId, amount, currency, merchantId, reference } = req;
      const timeoutMs = remainingMs(call.getDeadline());
      gateway
        .authorize(
          { idempotencyKey, requestId, amount, currency, merchantId, reference },
          timeoutMs === undefined ? {} : { timeoutMs },
        )
        .then(
          (result) => {
            log.info({ outcome: result.outcome }, 'authorization answered');
            callback(null, toReply(result));
          },
          (err: unknown) => {
            log.error({ err, code: ERR_INTERNAL }, 'authorization failed');
            callback({ code: grpc.status.INTERNAL, details: ERR_INTERNAL });
          },
        );
    },
  };

  server.addService(loadPaymentsPackage().Payments.service, handlers);
  server.addService(loadHealthPackage().Health.service, health.handlers);
  return { server, health };
}

export interface StartPaymentsServerOptions extends PaymentsServerOptions {
  /** 0 picks a free port; the bound one is returned. */
  port: number;
  host?: string;
  /** Insecure (plaintext) by default, for loopback and meshes that terminate TLS. */
  credentials?: grpc.ServerCredentials;
  /** How long close() lets in-flight calls finish before cutting them off. */
  shutdownTimeoutMs?: number;
}

export interface RunningPaymentsServer {
  port: number;
  health: HealthService;
  /** Reports NOT_SERVING, drains in-flight calls, then forces shutdown after the timeout. */
  close(): Promise<void>;
}

export async function startPaymentsServer(opts: StartPaymentsServerOptions): Promise<RunningPaymentsServer> {
  const { server, health } = createPaymentsServer(opts);
  const host = opts.host ?? '127.0.0.1';
  const address = host.includes(':') ? `[${host}]:${opts.port}` : `${host}:${opts.port}`;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  opts.logger.info({ port, host }, 'payments gRPC server listening');
  const shutdownTimeoutMs = opts.shutdownTimeoutMs ?? 10_000;
  let closing: Promise<void> | undefined;
  return {
    port,
    health,
    close() {
      closing ??= new Promise<void>((resolve) => {
        health.shutdown();
        const force = setTimeout(() => {
          opts.logger.warn(
            { code: ERR_SHUTDOWN_FORCED, shutdownTimeoutMs },
            'payments gRPC server did not drain in time',
          );
          server.forceShutdown();
          resolve();
        }, shutdownTimeoutMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      return closing;
    },
  };
}
