import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from './testing.js';

const REGISTER = /* GraphQL */ `
  mutation ($input: PreferencesInput!) {
    registerPreferences(input: $input) {
      userId
      defaultCurrency
      locale
      timezone
      notifyOn
      updatedAt
    }
  }
`;
const READ = /* GraphQL */ `
  {
    preferences {
      userId
      defaultCurrency
      locale
      timezone
      notifyOn
      updatedAt
    }
  }
`;

const NOW = new Date('2026-04-01T09:30:00.000Z');

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ now: () => NOW });
});
afterAll(async () => {
  await h.close();
});

describe('preferences', () => {
  it('is null before the user registers any', async () => {
    const res = await h.gql(h.token.operator, READ);
    expect(res.body).toEqual({ data: { preferences: null } });
  });

  it('registers preferences, answers the new state at once, and reads them back per user', async () => {
    const input = {
      defaultCurrency: 'EUR',
      locale: 'fr-BE',
      timezone: 'Europe/Brussels',
      notifyOn: ['SETTLED', 'DECLINED'],
    };
    const res = await h.gql(h.token.merchant, REGISTER, { input });
    expect(res.body).toEqual({
      data: { registerPreferences: { userId: 'demo-merchant', ...input, updatedAt: NOW.toISOString() } },
    });

    const events = await h.eventStore.readStream('preferences-demo-merchant');
    expect(events.map((e) => e.type)).toEqual(['PreferencesRegistered']);
    expect(events[0]!.metadata.actor).toBe('demo-merchant');
    await h.caughtUp(events[0]!.globalPosition);

    const read = await h.gql(h.token.merchant, READ);
    expect(read.body.data!.preferences).toEqual({ userId: 'demo-merchant', ...input, updatedAt: NOW.toISOString() });
    const other = await h.gql(h.token.merchant2, READ);
    expect(other.body).toEqual({ data: { preferences: null } });
  });

  it('defaults notifyOn to every terminal status and treats null as not set', async () => {
    const res = await h.gql(h.token.merchant2, REGISTER, { input: { locale: 'en', timezone: null } });
    expect(res.body.data!.registerPreferences).toEqual({
      userId: 'demo-merchant-2',
      defaultCurrency: null,
      locale: 'en',
      timezone: null,
      notifyOn: ['SETTLED', 'DECLINED', 'FAILED', 'CANCELLED'],
      updatedAt: NOW.toISOString(),
    });
  });

  it('rejects invalid input naming the field, and stores nothing', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ defaultCurrency: 'EURO' }, 'defaultCurrency'],
      [{ locale: 'not a locale' }, 'locale'],
      [{ timezone: 'Europe/../etc' }, 'timezone'],
      [{ notifyOn: ['AUTHORIZING'] }, 'notifyOn'],
    ];
    for (const [input, field] of cases) {
      const res = await h.gql(h.token.operator, REGISTER, { input });
      expect(res.body.data).toBeNull();
      expect(res.body.errors).toHaveLength(1);
      expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(res.body.errors![0]!.message).toContain(field);
    }
    expect(await h.eventStore.readStream('preferences-demo-operator')).toEqual([]);
  });
});
