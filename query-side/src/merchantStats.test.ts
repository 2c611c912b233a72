import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MERCHANT, DEMO_MERCHANT_2, createHarness, type Harness } from './testing.js';

const STATS = /* GraphQL */ `
  query ($merchantId: ID, $from: DateTime, $to: DateTime, $minPosition: String) {
    merchantStats(merchantId: $merchantId, from: $from, to: $to, minPosition: $minPosition) {
      merchantId
      from
      to
      registered
      settled
      declined
      failed
      cancelled
      inFlight
      registeredAmounts {
        currency
        amount
      }
      settledAmounts {
        currency
        amount
      }
    }
  }
`;

interface Stats {
  merchantStats: Record<string, unknown> & { registered: number };
}

let h: Harness;
/** The UTC day the requests of this file were registered on, as the read model records it. */
let day: string;

beforeAll(async () => {
  h = await createHarness();
  const a = await h.register(DEMO_MERCHANT, { amount: 1000, currency: 'EUR' });
  const b = await h.register(DEMO_MERCHANT, { amount: 2500, currency: 'EUR' });
  const c = await h.register(DEMO_MERCHANT, { amount: 700, currency: 'USD' });
  const d = await h.register(DEMO_MERCHANT, { amount: 300, currency: 'EUR' });
  await h.register(DEMO_MERCHANT, { amount: 50, currency: 'EUR' });
  await h.settle(a.id);
  await h.decline(b.id);
  await h.settle(c.id);
  await h.cancel(d.id);
  const other = await h.register(DEMO_MERCHANT_2, { amount: 999, currency: 'GBP' });
  await h.caughtUp(other.position);
  const events = await h.eventStore.readStream(`request-${a.id}`);
  day = events[0]!.occurredAt.slice(0, 10);
});
afterAll(async () => {
  await h.close();
});

const OWN = {
  merchantId: DEMO_MERCHANT,
  registered: 5,
  settled: 2,
  declined: 1,
  failed: 0,
  cancelled: 1,
  inFlight: 1,
  registeredAmounts: [
    { currency: 'EUR', amount: '3850' },
    { currency: 'USD', amount: '700' },
  ],
  settledAmounts: [
    { currency: 'EUR', amount: '1000' },
    { currency: 'USD', amount: '700' },
  ],
};

describe('merchantStats', () => {
  it('sums a merchant’s own figures, never another merchant’s', async () => {
    const res = await h.gql<Stats>(h.token.merchant, STATS);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.merchantStats).toEqual({ ...OWN, from: null, to: null });

    const named = await h.gql<Stats>(h.token.merchant, STATS, { merchantId: DEMO_MERCHANT });
    expect(named.body.data!.merchantStats).toEqual({ ...OWN, from: null, to: null });
  });

  it('refuses a merchant asking for another merchant', async () => {
    const res = await h.gql(h.token.merchant, STATS, { merchantId: DEMO_MERCHANT_2 });
    expect(res.body.data).toBeNull();
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('sums every merchant for operators, or the one they name', async () => {
    const all = await h.gql<Stats>(h.token.operator, STATS);
    expect(all.body.data!.merchantStats).toMatchObject({
      merchantId: null,
      registered: 6,
      inFlight: 2,
      registeredAmounts: [
        { currency: 'EUR', amount: '3850' },
        { currency: 'GBP', amount: '999' },
        { currency: 'USD', amount: '700' },
      ],
    });
    const one = await h.gql<Stats>(h.token.operator, STATS, { merchantId: DEMO_MERCHANT_2 });
    expect(one.body.data!.merchantStats).toMatchObject({ merchantId: DEMO_MERCHANT_2, registered: 1, inFlight: 1 });
  });

  it('sums whole UTC days between from and to, both inclusive', async () => {
    const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    const previous = new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
    const stats = async (from?: string, to?: string) =>
      (await h.gql<Stats>(h.token.merchant, STATS, { from, to })).body.data!.merchantStats;

    expect(await stats(`${day}T23:59:59Z`, `${day}T00:00:00Z`)).toMatchObject({
      registered: 5,
      from: `${day}T23:59:59.000Z`,
      to: `${day}T00:00:00.000Z`,
    });
    expect(await stats(previous, next)).toMatchObject({ registered: 5 });
    expect(await stats(next)).toMatchObject({ registered: 0, inFlight: 0, registeredAmounts: [], settledAmounts: [] });
    expect(await stats(undefined, previous)).toMatchObject({ registered: 0 });
  });

  it('waits for minPosition', async () => {
    const { position } = await h.register(DEMO_MERCHANT_2, { amount: 1, currency: 'GBP' });
    const res = await h.gql<Stats>(h.token.merchant2, STATS, { minPosition: String(position) });
    expect(res.body.data!.merchantStats).toMatchObject({
      registered: 2,
      registeredAmounts: [{ currency: 'GBP', amount: '1000' }],
    });
  });
});
