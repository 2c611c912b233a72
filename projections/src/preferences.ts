import type { PreferencesRegistered, StoredEvent } from '@settle/domain';
import type { ReadDoc } from '@settle/platform';
import type { Projection } from './projection.js';

export const PREFERENCES = 'preferences';

export interface PreferencesDoc extends ReadDoc {
  userId: string;
  defaultCurrency?: string;
  locale?: string;
  timezone?: string;
  notifyOn: string[];
  updatedAt: string;
}

export const preferencesProjection: Projection = {
  name: 'preferences',
  collections: { [PREFERENCES]: [] },
  streamPrefixes: ['preferences-'],
  async apply(stored, uow) {
    if (stored.type !== 'PreferencesRegistered') return;
    const d = (stored as unknown as PreferencesRegistered & StoredEvent).data;
    await uow.update<PreferencesDoc>(PREFERENCES, d.userId, stored, () => ({
      _id: d.userId,
      userId: d.userId,
      ...(d.defaultCurrency !== undefined ? { defaultCurrency: d.defaultCurrency } : {}),
      ...(d.locale !== undefined ? { locale: d.locale } : {}),
      ...(d.timezone !== undefined ? { timezone: d.timezone } : {}),
      notifyOn: d.notifyOn ?? ['SETTLED', 'DECLINED', 'FAILED', 'CANCELLED'],
      updatedAt: d.registeredAt,
    }));
  },
};
