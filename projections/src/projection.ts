import type { StoredEvent } from '@settle/domain';
import type { IndexSpec } from '@settle/platform';
import type { UnitOfWork } from './unitOfWork.js';

/** A projection folds events into read-model documents through a unit of work. */
export interface Projection {
  readonly name: string;
  /** Collections it owns, with their indexes (created at start). */
  readonly collections: Record<string, IndexSpec[]>;
  /** Stream prefixes it reads; the projector filters the log on the server side. */
  readonly streamPrefixes: string[];
  /** Optional: load the documents a batch touches in one round trip. */
  prefetch?(events: StoredEvent[], uow: UnitOfWork): Promise<void>;
  apply(event: StoredEvent, uow: UnitOfWork): Promise<void>;
}
