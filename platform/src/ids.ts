import { createHash, randomBytes, randomUUID } from 'node:crypto';

export const newId = (): string => randomUUID();

/** Namespace for Settle's deterministic ids (a fixed random UUID). */
const SETTLE_NAMESPACE = '6f1c7f3e-9d2a-4c55-8a53-3b9d6c1e2f70';

/** RFC 9562 version-5 UUID: the same (name, namespace) always gives the same id. */
export function deterministicId(name: string, namespace: string = SETTLE_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const h = hash.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The id of the `index`-th event a reactor appends in reaction to `causationId`. */
export const reactionEventId = (causationId: string, index = 0): string => deterministicId(`${causationId}/${index}`);

/** An unguessable, URL-safe identifier with 128+ bits of entropy. */
export const secureToken = (prefix: string, bytes = 18): string =>
  `${prefix}${randomBytes(bytes).toString('base64url')}`;
