export * from './errors.js';
export {
  buildSandbox,
  DEFAULT_CALLBACK_RETRY_DELAYS_MS,
  DEFAULT_SANDBOX_CALLBACK_URL,
  DEFAULT_SANDBOX_PORT,
  SANDBOX_DEV_WEBHOOK_SECRET,
} from './sandbox.js';
export type { AuthorizationBody, SandboxOptions, SandboxStats } from './sandbox.js';
export { sandboxRuleFor, type SandboxRule } from './sandboxRules.js';
export { createGatewayBreaker } from './gatewayBreaker.js';
export { createGatewayClient } from './gatewayClient.js';
export type { GatewayAuthorization, GatewayClient, GatewayClientOptions, GatewayResult } from './gatewayClient.js';
export { createHealthService, type HealthService, type ServingStatus } from './healthService.js';
export { createPaymentsServer, DEFAULT_GRPC_PORT, startPaymentsServer } from './paymentsService.js';
export type { PaymentsServerOptions, RunningPaymentsServer, StartPaymentsServerOptions } from './paymentsService.js';
