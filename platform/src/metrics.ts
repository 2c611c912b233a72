import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Settle's Prometheus metrics, on a registry per process (tests build several apps side by side). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'settle_process_' });
  const m = {
    registry,
    httpRequests: new Counter({
      name: 'settle_http_requests_total',
      help: 'HTTP requests answered, by method, route and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'settle_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    commands: new Counter({
      name: 'settle_commands_total',
      help: 'Commands handled, by command and outcome',
      labelNames: ['command', 'outcome'] as const,
      registers: [registry],
    }),
    eventsAppended: new Counter({
      name: 'settle_events_appended_total',
      help: 'Events appended to the event store, by type',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    appendDuration: new Histogram({
      name: 'settle_append_duration_seconds',
      help: 'Event store append latency (including group-commit wait)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    projectionPosition: new Gauge({
      name: 'settle_projection_position',
      help: 'Global position a projection has applied',
      labelNames: ['projection'] as const,
      registers: [registry],
    }),
    projectionLagEvents: new Gauge({
      name: 'settle_projection_lag_events',
      help: 'Events between the head of the log and a projection or reactor',
      labelNames: ['projection'] as const,
      registers: [registry],
    }),
    projectionLagSeconds: new Gauge({
      name: 'settle_projection_lag_seconds',
      help: 'Seconds the oldest event a projection or reactor has not applied has been waiting (0 when caught up)',
      labelNames: ['projection'] as const,
      registers: [registry],
    }),
    parkedStreams: new Gauge({
      name: 'settle_parked_streams',
      help: 'Streams parked after a failing event, per projection or reactor group (consumer:<group>)',
      labelNames: ['projection'] as const,
      registers: [registry],
    }),
    reactorPosition: new Gauge({
      name: 'settle_reactor_position',
      help: 'Global position a reactor has handled completely',
      labelNames: ['reactor'] as const,
      registers: [registry],
    }),
    paymentAttempts: new Counter({
      name: 'settle_payment_attempts_total',
      help: 'Authorisation attempts by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    webhooks: new Counter({
      name: 'settle_webhooks_total',
      help: 'Merchant webhook deliveries by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
