import * as grpc from '@grpc/grpc-js';
import { deadlineIn } from './loader.js';
import { loadPaymentsPackage, type AuthorizeReply, type AuthorizeRequest } from './payments.js';

export interface PaymentsClient {
  /**
   * Calls Payments/Authorize. Rejects with a grpc `ServiceError` (`code`, `details`) when
   * the call itself fails: deadline exceeded, unavailable, invalid argument.
   */
  authorize(req: AuthorizeRequest, opts: { deadlineMs: number }): Promise<AuthorizeReply>;
  close(): void;
}

const OUTCOMES = new Set(['AUTHORIZED', 'DECLINED', 'TRANSIENT_FAILURE']);

/**
 * Typed client for the payments service.
 *
 * @example
 * const payments = createPaymentsClient('127.0.0.1:50051');
 * const reply = await payments.authorize(req, { deadlineMs: 5_000 });
 */
export function createPaymentsClient(
  address: string,
  opts: { credentials?: grpc.ChannelCredentials } = {},
): PaymentsClient {
  const { Payments } = loadPaymentsPackage();
  const client = new Payments(address, opts.credentials ?? grpc.credentials.createInsecure());
  return {
    authorize(req, { deadlineMs }) {
      return new Promise((resolve, reject) => {
        client['Authorize'](
          req,
          { deadline: deadlineIn(deadlineMs) },
          (err: grpc.ServiceError | null, reply: AuthorizeReply) => {
            if (err) return reject(err);
            // A reply without a usable outcome is a broken server; callers must not guess.
            if (!OUTCOMES.has(reply.outcome))
              return reject(new Error(`payments service answered outcome ${String(reply.outcome)}`));
            resolve(reply);
          },
        );
      });
    },
    close: () => client.close(),
  };
}
