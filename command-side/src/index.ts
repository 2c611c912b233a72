export * from './errors.js';
export * from './problem.js';
export * from './app.js';
export * from './requests/callbackUrl.js';
export { requireRole, requirePrincipal } from './auth/plugin.js';
export type { ReadinessCheck } from './ops/routes.js';
export {
  LoginThrottle,
  MemoryCounterStore,
  RedisCounterStore,
  type RedisLike,
  type CounterStore,
} from './auth/loginThrottle.js';
export { parseCorsOrigins } from './auth/hygiene.js';
