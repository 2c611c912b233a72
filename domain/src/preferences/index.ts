import { ISO_4217_CURRENCIES } from '../currencies.js';
import type { Decider, DomainEvent } from '../envelope.js';
import { invalid, ERR_PREFERENCES_INVALID } from '../errors.js';
import type { RequestStatus } from '../paymentRequest/events.js';

export interface PreferencesInput {
  defaultCurrency?: string;
  locale?: string;
  timezone?: string;
  notifyOn?: RequestStatus[];
}

export type PreferencesRegistered = DomainEvent<
  'PreferencesRegistered',
  PreferencesInput & { userId: string; registeredAt: string }
>;
export type PreferencesEvent = PreferencesRegistered;
export type RegisterPreferences = {
  type: 'RegisterPreferences';
  data: PreferencesInput & { userId: string; now: string };
};

export interface PreferencesState {
  exists: boolean;
  userId: string;
  defaultCurrency?: string;
  locale?: string;
  timezone?: string;
  notifyOn: RequestStatus[];
  updatedAt?: string;
}

export const preferencesStreamId = (userId: string): string => `preferences-${userId}`;

const NOTIFIABLE: readonly RequestStatus[] = ['SETTLED', 'DECLINED', 'FAILED', 'CANCELLED'];
const LOCALE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;
const TIMEZONE = /^[A-Za-z_]+(\/[A-Za-z0-9_+-]+)*$/;

export const preferencesDecider: Decider<PreferencesState, RegisterPreferences, PreferencesEvent> = {
  initialState: () => ({ exists: false, userId: '', notifyOn: [...NOTIFIABLE] }),
  decide(command, state) {
    const { now, ...input } = command.data;
    if (input.defaultCurrency !== undefined && !ISO_4217_CURRENCIES.has(input.defaultCurrency))
      throw invalid('defaultCurrency', 'defaultCurrency must be an ISO 4217 code', ERR_PREFERENCES_INVALID);
    if (input.locale !== undefined && (input.locale.length > 35 || !LOCALE.test(input.locale)))
      throw invalid('locale', 'locale must be a BCP 47 language tag such as "en" or "fr-BE"', ERR_PREFERENCES_INVALID);
    if (input.timezone !== undefined && (input.timezone.length > 64 || !TIMEZONE.test(input.timezone)))
      throw invalid(
        'timezone',
        'timezone must be an IANA zone name such as "Europe/Brussels"',
        ERR_PREFERENCES_INVALID,
      );
    if (input.notifyOn !== undefined) {
      const bad = input.notifyOn.find((s) => !NOTIFIABLE.includes(s));
      if (bad !== undefined)
        throw invalid('notifyOn', `notifyOn accepts only terminal statuses, not ${bad}`, ERR_PREFERENCES_INVALID);
    }
    const unchanged =
      state.exists &&
      state.defaultCurrency === input.defaultCurrency &&
      state.locale === input.locale &&
      state.timezone === input.timezone &&
      (input.notifyOn ?? NOTIFIABLE).join() === state.notifyOn.join();
    if (unchanged) return [];
    return [{ type: 'PreferencesRegistered', data: { ...input, registeredAt: now } }];
  },
  evolve(state, event) {
    const d = event.data;
    return {
      exists: true,
      userId: d.userId,
      ...(d.defaultCurrency !== undefined ? { defaultCurrency: d.defaultCurrency } : {}),
      ...(d.locale !== undefined ? { locale: d.locale } : {}),
      ...(d.timezone !== undefined ? { timezone: d.timezone } : {}),
      notifyOn: d.notifyOn ?? [...NOTIFIABLE],
      updatedAt: d.registeredAt,
    };
  },
};
