import { circuitBreaker, handleAll, SamplingBreaker, type CircuitBreakerPolicy } from 'cockatiel';

/**
 * The breaker in front of the gateway. It samples failure *rate* over 10 s and needs at
 * least 5 calls a second before it may open, so one request that keeps failing (say a
 * `…500` amount retried five times in 15 s) never opens it; only a gateway that fails
 * most of a real load does.
 */
export function createGatewayBreaker(opts: { halfOpenAfterMs?: number } = {}): CircuitBreakerPolicy {
  return circuitBreaker(handleAll, {
    halfOpenAfter: opts.halfOpenAfterMs ?? 5_000,
    breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000, minimumRps: 5 }),
  });
}
