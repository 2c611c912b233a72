import * as grpc from '@grpc/grpc-js';
import { deadlineIn, loadGrpcObject, lookupService } from './loader.js';

export type HealthServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface HealthCheckRequest {
  /** '' asks about the server as a whole. */
  service: string;
}

export interface HealthCheckResponse {
  status: HealthServingStatus;
}

export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

/** The `grpc.health.v1` namespace of the standard health contract. */
export interface HealthPackage {
  Health: grpc.ServiceClientConstructor;
}

/** Server-side handlers for the standard health service. */
export interface HealthHandlers extends grpc.UntypedServiceImplementation {
  Check: grpc.handleUnaryCall<HealthCheckRequest, HealthCheckResponse>;
  Watch: grpc.handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse>;
}

export function loadHealthPackage(): HealthPackage {
  return { Health: lookupService(loadGrpcObject('grpc/health/v1/health.proto'), HEALTH_SERVICE_NAME) };
}

export interface HealthClient {
  /** Resolves with the status; rejects with a grpc `ServiceError` (NOT_FOUND for an unknown service). */
  check(service: string, opts: { deadlineMs: number }): Promise<HealthServingStatus>;
  close(): void;
}

/** Client for `grpc.health.v1.Health/Check`, e.g. to wait for a gRPC role to be ready. */
export function createHealthClient(
  address: string,
  opts: { credentials?: grpc.ChannelCredentials } = {},
): HealthClient {
  const { Health } = loadHealthPackage();
  const client = new Health(address, opts.credentials ?? grpc.credentials.createInsecure());
  return {
    check(service, { deadlineMs }) {
      return new Promise((resolve, reject) => {
        const req: HealthCheckRequest = { service };
        client['Check'](
          req,
          { deadline: deadlineIn(deadlineMs) },
          (err: grpc.ServiceError | null, res: HealthCheckResponse) => (err ? reject(err) : resolve(res.status)),
        );
      });
    },
    close: () => client.close(),
  };
}
