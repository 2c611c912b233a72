import type * as grpc from '@grpc/grpc-js';
import { loadGrpcObject, lookupService } from './loader.js';

/** The outcomes a caller can act on; OUTCOME_UNSPECIFIED never leaves a correct server. */
export type AuthorizeOutcome = 'AUTHORIZED' | 'DECLINED' | 'TRANSIENT_FAILURE';

/** `settle.payments.v1.AuthorizeRequest`, as the loader presents it (camelCase, int64 as number). */
export interface AuthorizeRequest {
  requestId: string;
  attempt: number;
  idempotencyKey: string;
  /** Integer minor units. */
  amount: number;
  /** ISO 4217. */
  currency: string;
  merchantId: string;
  reference: string;
}

/** `settle.payments.v1.AuthorizeReply`; fields that do not apply to the outcome are ''. */
export interface AuthorizeReply {
  outcome: AuthorizeOutcome;
  providerPaymentId: string;
  reason: string;
  errorCode: string;
  errorMessage: string;
}

export const PAYMENTS_SERVICE_NAME = 'settle.payments.v1.Payments';

/** The `settle.payments.v1` namespace of the loaded contract. */
export interface PaymentsPackage {
  /** Client constructor; its static `service` is the definition a server registers. */
  Payments: grpc.ServiceClientConstructor;
}

/** Server-side handlers for Payments, typed for `server.addService`. */
export interface PaymentsHandlers extends grpc.UntypedServiceImplementation {
  Authorize: grpc.handleUnaryCall<AuthorizeRequest, AuthorizeReply>;
}

export function loadPaymentsPackage(): PaymentsPackage {
  return { Payments: lookupService(loadGrpcObject('payments.proto'), PAYMENTS_SERVICE_NAME) };
}
