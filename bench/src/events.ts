import { randomUUID } from 'node:crypto';
import { prng } from './measure.js';

/** One event row as both Settle's store and the raw-INSERT limit write it. */
export interface EventRow {
  id: string;
  streamId: string;
  /** 0-based position in its stream. */
  streamPosition: number;
  type: string;
  data: Record<string, unknown>;
  metadata: { correlationId: string; causationId: string; actor: string; traceparent: string };
  /** ISO time, for seeded logs (appends let the database stamp it). */
  occurredAt: string;
}

const MERCHANTS = ['demo-merchant', 'demo-merchant-2', 'merchant-3', 'merchant-4', 'merchant-5'];
const CURRENCIES = ['EUR', 'EUR', 'EUR', 'USD', 'GBP'];
const DAY_MS = 86_400_000;

/** The lifecycles a request goes through, by share: mostly settled, some declined, a few retried. */
function lifecycle(r: number): string[] {
  if (r < 0.8)
    return [
      'RequestRegistered',
      'PaymentAuthorizationRequested',
      'PaymentAuthorized',
      'CallbackReceived',
      'PaymentSettled',
      'MerchantNotified',
    ];
  if (r < 0.9) return ['RequestRegistered', 'PaymentAuthorizationRequested', 'PaymentDeclined', 'MerchantNotified'];
  return [
    'RequestRegistered',
    'PaymentAuthorizationRequested',
    'PaymentAttemptFailed',
    'PaymentAuthorizationRequested',
    'PaymentAuthorized',
    'CallbackReceived',
    'PaymentSettled',
    'MerchantNotified',
  ];
}

interface Flow {
  requestId: string;
  types: string[];
  next: number;
  amount: number;
  currency: string;
  merchantId: string;
  attempt: number;
  correlationId: string;
}

function dataFor(flow: Flow, type: string, at: string): Record<string, unknown> {
  switch (type) {
    case 'RequestRegistered':
      return {
        requestId: flow.requestId,
        authId: `auth_${flow.requestId.replace(/-/g, '')}`,
        merchantId: flow.merchantId,
        amount: flow.amount,
        currency: flow.currency,
        reference: `bench-${flow.requestId.slice(0, 8)}`,
        description: 'benchmark request',
        registeredAt: at,
      };
    case 'PaymentAuthorizationRequested':
      flow.attempt++;
      return { attempt: flow.attempt, gatewayIdempotencyKey: `${flow.requestId}:${flow.attempt}`, requestedAt: at };
    case 'PaymentAuthorized':
      return { attempt: flow.attempt, providerPaymentId: `pp_${flow.requestId.slice(0, 12)}` };
    case 'PaymentAttemptFailed':
      return {
        attempt: flow.attempt,
        error: { code: 'GATEWAY_UNAVAILABLE', message: 'gateway answered 503' },
        nextAttemptAt: at,
      };
    case 'PaymentDeclined':
      return { attempt: flow.attempt, reason: 'insufficient_funds' };
    case 'CallbackReceived':
      return {
        provider: 'sandbox',
        providerEventId: `evt_${flow.requestId.slice(0, 12)}`,
        type: 'payment.captured',
        receivedAt: at,
      };
    case 'PaymentSettled':
      return { settledAt: at, providerPaymentId: `pp_${flow.requestId.slice(0, 12)}` };
    case 'MerchantNotified':
      return {
        attempt: 1,
        httpStatus: 200,
        forStatus: flow.types.includes('PaymentDeclined') ? 'DECLINED' : 'SETTLED',
        webhookId: `msg_${flow.requestId.slice(0, 12)}`,
      };
    default:
      return {};
  }
}

/**
 * A realistic log of payment-request events, produced in chunks so a million events never sit in
 * memory at once: requests overlap (up to `inFlight` at a time, their events interleaved as in
 * production) and are spread over `days` days of a log expected to reach `expected` events.
 * Deterministic per seed, apart from the random UUIDs.
 */
export class LogGenerator {
  private readonly random: () => number;
  private readonly open: Flow[] = [];
  private readonly streamPositions = new Map<string, number>();
  private produced = 0;
  private lastId: string | undefined;
  private readonly start = Date.UTC(2026, 0, 1);

  constructor(private readonly opts: { expected: number; seed?: number; inFlight?: number; days?: number }) {
    this.random = prng(opts.seed ?? 42);
  }

  get count(): number {
    return this.produced;
  }

  next(count: number): EventRow[] {
    const rows: EventRow[] = [];
    const random = this.random;
    const inFlight = this.opts.inFlight ?? 50;
    const spanMs = (this.opts.days ?? 30) * DAY_MS;
    for (let k = 0; k < count; k++) {
      while (this.open.length < inFlight) {
        this.open.push({
          requestId: randomUUID(),
          types: lifecycle(random()),
          next: 0,
          amount: 100 + Math.floor(random() * 99_000) * 10,
          currency: CURRENCIES[Math.floor(random() * CURRENCIES.length)]!,
          merchantId: MERCHANTS[Math.floor(random() * MERCHANTS.length)]!,
          attempt: 0,
          correlationId: randomUUID(),
        });
      }
      const i = Math.floor(random() * this.open.length);
      const flow = this.open[i]!;
      const type = flow.types[flow.next++]!;
      const at = new Date(
        this.start + Math.floor((Math.min(this.produced, this.opts.expected) / this.opts.expected) * spanMs),
      ).toISOString();
      const streamId = `request-${flow.requestId}`;
      const position = this.streamPositions.get(streamId) ?? 0;
      this.streamPositions.set(streamId, position + 1);
      const id = randomUUID();
      rows.push({
        id,
        streamId,
        streamPosition: position,
        type,
        data: dataFor(flow, type, at),
        metadata: {
          correlationId: flow.correlationId,
          causationId: this.lastId ?? flow.correlationId,
          actor: type === 'RequestRegistered' ? `client:${flow.merchantId}` : 'system:dispatcher',
          traceparent: `00-${flow.correlationId.replace(/-/g, '')}-${flow.requestId.replace(/-/g, '').slice(0, 16)}-01`,
        },
        occurredAt: at,
      });
      this.lastId = id;
      this.produced++;
      if (flow.next === flow.types.length) {
        this.streamPositions.delete(streamId);
        this.open.splice(i, 1);
      }
    }
    return rows;
  }
}

/** A whole log of `count` events at once (small logs). */
export const generateLog = (
  count: number,
  opts: { seed?: number; inFlight?: number; days?: number } = {},
): EventRow[] => new LogGenerator({ expected: count, ...opts }).next(count);

/** The log grouped by stream, each stream's events in order (what appenders write). */
export function byStream(rows: EventRow[]): EventRow[][] {
  const streams = new Map<string, EventRow[]>();
  for (const row of rows) {
    let list = streams.get(row.streamId);
    if (!list) streams.set(row.streamId, (list = []));
    list.push(row);
  }
  return [...streams.values()];
}
