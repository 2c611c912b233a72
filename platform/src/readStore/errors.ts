import { SettleError } from '../errors.js';

export const ERR_READ_STORE_DUPLICATE_KEY = 'SETTLE_ERR_READ_STORE_DUPLICATE_KEY';

/**
 * A write would give two documents the same value on a unique index. The other documents of the
 * batch are still written (as MongoDB's unordered bulk write does); these ids were not.
 */
export class DuplicateKeyError extends SettleError {
  readonly collection: string;
  readonly ids: string[];
  constructor(collection: string, ids: string[], options?: { cause?: unknown }) {
    super(
      ERR_READ_STORE_DUPLICATE_KEY,
      `read store: ${collection}: documents ${ids.join(', ')} conflict with another document on a unique index`,
      409,
      options,
    );
    this.name = 'DuplicateKeyError';
    this.collection = collection;
    this.ids = ids;
  }
}
