import { MAX_AMOUNT } from '@settle/domain';

export const STATUSES = ['REGISTERED', 'AUTHORIZING', 'AUTHORIZED', 'SETTLED', 'DECLINED', 'FAILED', 'CANCELLED', 'ARCHIVED'];

export const registerBody = {
  type: 'object',
  additionalProperties: false,
  required: ['amount', 'currency', 'reference'],
  properties: {
    amount: { type: 'integer', minimum: 1, maximum: MAX_AMOUNT, description: 'integer minor units (cents)' },
    currency: { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO 4217 code' },
    reference: { type: 'string', minLength: 1, maxLength: 128 },
    description: { type: 'string', maxLength: 1000 },
    callbackUrl: { type: 'string', minLength: 1, maxLength: 2048 },
    metadata: {
      type: 'object',
      maxProperties: 20,
      propertyNames: { type: 'string', minLength: 1, maxLength: 40 },
      additionalProperties: { type: 'string', maxLength: 500 },
    },
  },
} as const;

export const idempotencyHeaders = {
  type: 'object',
  properties: {
    'idempotency-key': { type: 'string', minLength: 1, maxLength: 255 },
  },
} as const;

export const acceptedResponse = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    authId: { type: 'string' },
    status: { type: 'string', enum: STATUSES },
    position: { type: 'string', description: 'global position of the last event written; pass it as minPosition to read your write' },
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
  properties: { reason: { type: 'string', maxLength: 500 } },
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
