import type { AuthorizeRequest } from '@settle/proto';

const MAX_AMOUNT = 1_000_000_000_000;

/**
 * Problems with an Authorize request, each naming the proto field; empty when valid.
 * proto3 cannot tell a missing field from its default, so '' and 0 count as missing.
 */
export function validateAuthorizeRequest(req: AuthorizeRequest): string[] {
  const problems: string[] = [];
  for (const [field, value] of [
    ['request_id', req.requestId],
    ['idempotency_key', req.idempotencyKey],
    ['merchant_id', req.merchantId],
    ['reference', req.reference],
  ] as const) {
    if (!value) problems.push(`${field} is required`);
  }
  if (!Number.isSafeInteger(req.amount) || req.amount < 1 || req.amount > MAX_AMOUNT) {
    problems.push(`amount must be an integer number of minor units from 1 to ${MAX_AMOUNT}`);
  }
  if (!/^[A-Z]{3}$/.test(req.currency)) problems.push('currency must be an ISO 4217 code');
  return problems;
}
