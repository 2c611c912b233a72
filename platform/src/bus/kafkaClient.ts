import { Kafka, logLevel, type LogEntry, type logCreator } from 'kafkajs';
import { Counter, Gauge, type Registry } from 'prom-client';
import { SettleError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Kafka cannot be reached (start-up or admin calls). */
export const ERR_BUS_UNAVAILABLE = 'SETTLE_ERR_BUS_UNAVAILABLE';
/** A handler kept failing on a message and it was sent to the DLQ (default `x-settle-error-code`). */
export const ERR_BUS_HANDLER_FAILED = 'SETTLE_ERR_BUS_HANDLER_FAILED';
/** A message on a Settle topic is not a stored event envelope (sent to the DLQ without retries). */
export const ERR_BUS_MALFORMED_MESSAGE = 'SETTLE_ERR_BUS_MALFORMED_MESSAGE';
/** The consumer's process kept dying (or was killed) while handling a message: sent to the DLQ unhandled. */
export const ERR_BUS_CRASH_LOOP = 'SETTLE_ERR_BUS_CRASH_LOOP';

export class BusUnavailableError extends SettleError {
  constructor(brokers: string[], cause: unknown) {
    super(
      ERR_BUS_UNAVAILABLE,
      `could not connect to Kafka at ${brokers.join(',')}: ${(cause as Error)?.message ?? String(cause)}`,
      503,
      {
        cause,
      },
    );
    this.name = 'BusUnavailableError';
  }
}

/** Protocol errors kafkajs logs loudly but handles itself (rejoin, retry): routine, not warnings. */
const ROUTINE = new RegExp(
  [
    'rebalanc',
    'coordinator is loading',
    'not the correct coordinator',
    'not coordinator',
    'leader for that topic-partition',
    'does not host this topic-partition',
    'leadership election',
    'Topic creation errors', // a topic another process created a moment earlier; real failures are thrown
  ].join('|'),
  'i',
);

/**
 * kafkajs logs through pino, quietly: its ERROR lines are mostly retried protocol errors, so
 * they become warnings, and routine ones (a rebalance, a coordinator loading) debug lines.
 */
function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _t, logger: _l, ...extra } = log;
      const routine = ROUTINE.test(`${message} ${String((extra as { error?: unknown }).error ?? '')}`);
      if ((level === logLevel.ERROR || level === logLevel.WARN) && !routine)
        logger.warn({ kafkajs: namespace, ...extra }, message);
      else logger.debug({ kafkajs: namespace, ...extra }, message);
    };
}

export interface KafkaClientOptions {
  brokers: string[];
  clientId?: string;
  logger: Logger;
  /** kafkajs connection timeout; kept short so a wrong address fails start-up fast. */
  connectionTimeoutMs?: number;
  /** Retries of each kafkajs operation (connections included). */
  retries?: number;
}

export function createKafkaClient(opts: KafkaClientOptions): Kafka {
  return new Kafka({
    clientId: opts.clientId ?? 'settle',
    brokers: opts.brokers,
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: opts.retries ?? 8 },
    logLevel: logLevel.WARN,
    logCreator: pinoLogCreator(opts.logger.child({ part: 'kafkajs' })),
  });
}

/** The bus's own Prometheus series, registered once per registry. */
export function busMetrics(registry: Registry) {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    (registry.getSingleMetric(name) as Gauge<L> | undefined) ??
    new Gauge({ name, help, labelNames, registers: [registry] });
  return {
    forwarded: counter('settle_forwarder_events_total', 'Events the forwarder published to Kafka (acknowledged)', [
      'topic',
    ]),
    forwarderPosition: gauge(
      'settle_forwarder_position',
      'Global position the forwarder has published and checkpointed',
      [],
    ),
    messages: counter(
      'settle_bus_messages_total',
      'Bus messages by consumer group and outcome (handled, retried, dead_lettered, skipped)',
      ['group', 'outcome'],
    ),
  };
}

export type BusMetrics = ReturnType<typeof busMetrics>;
