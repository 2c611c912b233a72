import { describe, it, expect } from 'vitest';
import { DomainError, ERR_PREFERENCES_INVALID } from '../errors.js';
import { specFor } from '../testing.js';
import {
  preferencesDecider,
  preferencesStreamId,
  type PreferencesEvent,
  type PreferencesInput,
  type RegisterPreferences,
} from './index.js';

const spec = specFor(preferencesDecider);
const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-02T08:30:00.000Z';

const register = (input: PreferencesInput, now = T1): RegisterPreferences => ({
  type: 'RegisterPreferences',
  data: { userId: 'user-1', ...input, now },
});

const registered: PreferencesEvent = {
  type: 'PreferencesRegistered',
  data: {
    userId: 'user-1',
    defaultCurrency: 'EUR',
    locale: 'fr-BE',
    timezone: 'Europe/Brussels',
    notifyOn: ['SETTLED', 'FAILED'],
    registeredAt: T0,
  },
};

const invalidField = (field: string) => (error: unknown) =>
  error instanceof DomainError &&
  error.kind === 'validation' &&
  error.code === ERR_PREFERENCES_INVALID &&
  error.field === field;

describe('RegisterPreferences', () => {
  it('names the stream after the user', () => {
    expect(preferencesStreamId('user-1')).toBe('preferences-user-1');
  });

  it('registers valid preferences', () => {
    spec([])
      .when(
        register(
          { defaultCurrency: 'EUR', locale: 'fr-BE', timezone: 'Europe/Brussels', notifyOn: ['SETTLED', 'FAILED'] },
          T0,
        ),
      )
      .then([registered]);
  });

  it('registers preferences with no optional field', () => {
    spec([])
      .when(register({}))
      .then([{ type: 'PreferencesRegistered', data: { userId: 'user-1', registeredAt: T1 } }]);
  });

  it.each([['en'], ['fil'], ['zh-Hant-TW']])('accepts the locale %s', (locale) => {
    spec([])
      .when(register({ locale }))
      .then([{ type: 'PreferencesRegistered', data: { userId: 'user-1', locale, registeredAt: T1 } }]);
  });

  it.each([['UTC'], ['America/Argentina/Buenos_Aires'], ['Etc/GMT+5']])('accepts the timezone %s', (timezone) => {
    spec([])
      .when(register({ timezone }))
      .then([{ type: 'PreferencesRegistered', data: { userId: 'user-1', timezone, registeredAt: T1 } }]);
  });

  const invalidInputs: [field: string, label: string, input: PreferencesInput][] = [
    ['defaultCurrency', 'an unknown code', { defaultCurrency: 'XYZ' }],
    ['defaultCurrency', 'a lowercase code', { defaultCurrency: 'eur' }],
    ['locale', 'free text', { locale: 'French' }],
    ['locale', 'an uppercase language', { locale: 'EN' }],
    ['locale', 'an underscore separator', { locale: 'fr_BE' }],
    ['locale', 'a well-formed tag longer than 35 characters', { locale: `en-${'abcdefgh-'.repeat(4)}x1` }],
    ['timezone', 'a name with spaces', { timezone: 'Europe/Brussels time' }],
    ['timezone', 'a path traversal', { timezone: '../etc/passwd' }],
    ['timezone', 'a well-formed name longer than 64 characters', { timezone: `Europe/${'A'.repeat(60)}` }],
    ['notifyOn', 'a non-terminal status', { notifyOn: ['SETTLED', 'AUTHORIZED'] }],
    ['notifyOn', 'ARCHIVED', { notifyOn: ['ARCHIVED'] }],
  ];

  it.each(invalidInputs)('rejects %s given %s, naming the field', (field, _label, input) => {
    spec([]).when(register(input)).thenThrows(invalidField(field));
  });

  it('rejects invalid preferences even when they were registered before', () => {
    spec([registered])
      .when(
        register({ defaultCurrency: 'EUR', locale: 'fr-BE', timezone: 'Europe/Brussels', notifyOn: ['REGISTERED'] }),
      )
      .thenThrows(invalidField('notifyOn'));
  });

  it('decides nothing when the same preferences are registered again', () => {
    spec([registered])
      .when(
        register({
          defaultCurrency: 'EUR',
          locale: 'fr-BE',
          timezone: 'Europe/Brussels',
          notifyOn: ['SETTLED', 'FAILED'],
        }),
      )
      .then([]);
  });

  it('decides nothing when registering again without notifyOn keeps the default (all terminal statuses)', () => {
    const defaults: PreferencesEvent = {
      type: 'PreferencesRegistered',
      data: { userId: 'user-1', locale: 'en', registeredAt: T0 },
    };
    spec([defaults])
      .when(register({ locale: 'en' }))
      .then([]);
    spec([defaults])
      .when(register({ locale: 'en', notifyOn: ['SETTLED', 'DECLINED', 'FAILED', 'CANCELLED'] }))
      .then([]);
  });

  it('registers again when a field changes', () => {
    spec([registered])
      .when(
        register({
          defaultCurrency: 'USD',
          locale: 'fr-BE',
          timezone: 'Europe/Brussels',
          notifyOn: ['SETTLED', 'FAILED'],
        }),
      )
      .then([
        {
          type: 'PreferencesRegistered',
          data: {
            userId: 'user-1',
            defaultCurrency: 'USD',
            locale: 'fr-BE',
            timezone: 'Europe/Brussels',
            notifyOn: ['SETTLED', 'FAILED'],
            registeredAt: T1,
          },
        },
      ]);
  });

  it('registers again when a field is dropped or notifyOn changes', () => {
    spec([registered])
      .when(register({ defaultCurrency: 'EUR', timezone: 'Europe/Brussels', notifyOn: ['SETTLED', 'FAILED'] }))
      .then([
        {
          type: 'PreferencesRegistered',
          data: {
            userId: 'user-1',
            defaultCurrency: 'EUR',
            timezone: 'Europe/Brussels',
            notifyOn: ['SETTLED', 'FAILED'],
            registeredAt: T1,
          },
        },
      ]);
    spec([registered])
      .when(register({ defaultCurrency: 'EUR', locale: 'fr-BE', timezone: 'Europe/Brussels', notifyOn: ['SETTLED'] }))
      .then([
        {
          type: 'PreferencesRegistered',
          data: {
            userId: 'user-1',
            defaultCurrency: 'EUR',
            locale: 'fr-BE',
            timezone: 'Europe/Brussels',
            notifyOn: ['SETTLED'],
            registeredAt: T1,
          },
        },
      ]);
  });
});

describe('preferences evolve', () => {
  it('replaces the state with the latest registration, defaulting notifyOn to every terminal status', () => {
    const first = preferencesDecider.evolve(preferencesDecider.initialState(), registered);
    expect(first).toEqual({
      exists: true,
      userId: 'user-1',
      defaultCurrency: 'EUR',
      locale: 'fr-BE',
      timezone: 'Europe/Brussels',
      notifyOn: ['SETTLED', 'FAILED'],
      updatedAt: T0,
    });
    const second = preferencesDecider.evolve(first, {
      type: 'PreferencesRegistered',
      data: { userId: 'user-1', locale: 'en', registeredAt: T1 },
    });
    expect(second).toEqual({
      exists: true,
      userId: 'user-1',
      locale: 'en',
      notifyOn: ['SETTLED', 'DECLINED', 'FAILED', 'CANCELLED'],
      updatedAt: T1,
    });
  });
});
