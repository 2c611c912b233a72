import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../errors.js';
import { isOutageError } from './outage.js';

describe('isOutageError', () => {
  it('tells a part that is down from a poison event', () => {
    expect(isOutageError(new StoreUnavailableError('read store'))).toBe(true);
    expect(isOutageError(Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14 }))).toBe(
      true,
    );
    expect(
      isOutageError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(
      isOutageError(Object.assign(new Error('Reached the max retries'), { name: 'MaxRetriesPerRequestError' })),
    ).toBe(true);
    expect(isOutageError(new TypeError("Cannot read properties of null (reading 'requestId')"))).toBe(false);
    expect(isOutageError(Object.assign(new Error('3 INVALID_ARGUMENT'), { code: 3 }))).toBe(false);
    expect(isOutageError(null)).toBe(false);
  });

  it('counts PostgreSQL statement timeouts and lost connections as outages, never as poison', () => {
    const cancelled = Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
    expect(isOutageError(cancelled)).toBe(true);
    expect(isOutageError(new Error('Query read timeout'))).toBe(true);
    expect(isOutageError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isOutageError(Object.assign(new Error('duplicate key value'), { code: '23505' }))).toBe(false);
  });
});
