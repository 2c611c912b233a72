import { MAX_AMOUNT, REQUEST_STATUSES } from '@settle/domain';

/** Largest body the /v1/requests routes read (413 above); the server-wide limit is larger. */
export const REQUEST_BODY_LIMIT = 64 * 1024;

/** Printable text without control characters (no NUL, no CR/LF smuggled into logs or headers). */
const TEXT = '^[^\\u0000-\\u001f\\u007f]*$';
/** As TEXT, but line breaks and tabs are fine in free text. */
const FREE_TEXT = '^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$';

export const STATUSES = [...REQUEST_STATUSES];

export const registerBody = {
  type: 'object',
  additionalProperties: false,
  required: ['amount', 'currency', 'reference'],
  properties: {
    amount: { type: 'integer', minimum: 1, maximum: MAX_AMOUNT, description: 'integer minor units (cents)' },
    currency: { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO 4217 code' },
    reference: { type: 'string', minLength: 1, maxLength: 128, pattern: TEXT },
    description: { type: 'string', maxLength: 1000, pattern: FREE_TEXT },
    callbackUrl: { type: 'string', minLength: 1, maxLength: 2048, pattern: '^[\\u0021-\\u007e]+$' },
    metadata: {
      type: 'object',
      maxProperties: 20,
      propertyNames: { type: 'string', minLength: 1, maxLength: 40, pattern: TEXT },
      additionalProperties: { type: 'string', maxLength: 500, pattern: FREE_TEXT },
    },
  },
} as const;

export const idempotencyHeaders = {
  type: 'object',
  properties: {
    'idempotency-key': { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\u0020-\\u007e]+$' },
  },
} as const;

export const readHeaders = {
  type: 'object',
  properties: { 'if-none-match': { type: 'string', maxLength: 128 } },
} as const;

export const cancelHeaders = {
  type: 'object',
  properties: { 'if-match': { type: 'string', maxLength: 64 } },
} as const;

export const acceptedResponse = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    authId: { type: 'string' },
    status: { type: 'string', enum: STATUSES },
    position: {
      type: 'string',
      description: 'global position of the last event written; pass it as minPosition to read your write',
    },
  },
} as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } },
} as const;

export const cancelBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 500, pattern: FREE_TEXT } },
} as const;

export const requestView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    authId: { type: 'string' },
    merchantId: { type: 'string' },
    amount: { type: 'integer' },
    currency: { type: 'string' },
    reference: { type: 'string' },
    callbackUrl: { type: 'string' },
    status: { type: 'string', enum: STATUSES },
    attempts: { type: 'integer' },
    nextAttemptAt: { type: 'string' },
    lastError: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
    providerPaymentId: { type: 'string' },
    version: { type: 'integer' },
    position: { type: 'string' },
  },
} as const;
