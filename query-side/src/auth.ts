import { hasRole, type ClientRegistry, type Principal, type TokenService } from '@settle/platform';
import { forbidden, unauthenticated } from './errors.js';

const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * Verifies an `Authorization` value (`Bearer <jwt>`) from an HTTP header or a websocket
 * `connection_init` payload, and, given the registry, that the client is still enabled (an access
 * token outlives a disabling by up to its TTL otherwise). Throws UNAUTHENTICATED without saying
 * more than which step failed: verification details stay in the server's logs.
 */
export async function authenticate(
  tokens: Pick<TokenService, 'verify'>,
  authorization: unknown,
  clients?: Pick<ClientRegistry, 'get'>,
): Promise<Principal> {
  const match = typeof authorization === 'string' ? BEARER.exec(authorization.trim()) : null;
  if (!match) throw unauthenticated('a bearer token is required');
  let principal: Principal;
  try {
    principal = await tokens.verify(match[1]!);
  } catch {
    throw unauthenticated('the bearer token is invalid or expired');
  }
  if (clients) {
    const client = await clients.get(principal.clientId);
    if (!client || client.disabled) throw unauthenticated('the client is disabled');
  }
  return principal;
}

const isOperator = (p: Principal): boolean => hasRole(p, 'operator', 'admin');

/**
 * Which merchant's documents a principal may read: `undefined` means every merchant (operators
 * and admins, optionally narrowed by `requested`); a merchant always gets their own id, and naming
 * another merchant is FORBIDDEN. A principal that is neither is FORBIDDEN.
 */
export function merchantScope(principal: Principal, requested?: string | null): string | undefined {
  if (isOperator(principal)) return requested ?? undefined;
  if (hasRole(principal, 'merchant') && principal.merchantId) {
    if (requested != null && requested !== principal.merchantId)
      throw forbidden('a merchant can only read its own data');
    return principal.merchantId;
  }
  throw forbidden('reading payment requests needs the merchant, operator or admin role');
}

/** Whether a principal may see a document; a document it may not see is reported as absent, never as forbidden. */
export function canSee(principal: Principal, doc: { merchantId: string }): boolean {
  if (isOperator(principal)) return true;
  return (
    hasRole(principal, 'merchant') && principal.merchantId !== undefined && principal.merchantId === doc.merchantId
  );
}

export function requireOperator(principal: Principal): void {
  if (!isOperator(principal)) throw forbidden('this field needs the operator or admin role');
}
