export { PROTO_DIR } from './protoDir.js';
export { LOADER_OPTIONS } from './loader.js';
export {
  loadPaymentsPackage,
  PAYMENTS_SERVICE_NAME,
  type AuthorizeOutcome,
  type AuthorizeReply,
  type AuthorizeRequest,
  type PaymentsHandlers,
  type PaymentsPackage,
} from './payments.js';
export { createPaymentsClient, type PaymentsClient } from './paymentsClient.js';
export {
  createHealthClient,
  HEALTH_SERVICE_NAME,
  loadHealthPackage,
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthClient,
  type HealthHandlers,
  type HealthPackage,
  type HealthServingStatus,
} from './health.js';
export { grpcClientCredentials, grpcServerCredentials, type GrpcTlsFiles } from './tls.js';
