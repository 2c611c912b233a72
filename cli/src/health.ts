import type { ReadinessCheck } from '@settle/command-side';
import type { Config, PartMonitor, PartStatus } from '@settle/platform';
import type { RoleName } from './start.js';
import type { PlatformParts } from './wiring.js';

/**
 * Which parts each role uses (and so which make its `/health/ready` red when down). Every role
 * reads or writes the event store; Redis, when configured, holds the rate limits and login
 * throttle (command), the cache and subscription fan-out (query, projector) and locks (reactor,
 * scheduler).
 */
const PARTS_BY_ROLE: Record<RoleName, readonly string[]> = {
  command: ['eventStore', 'redis'],
  query: ['eventStore', 'readStore', 'redis'],
  projector: ['eventStore', 'readStore', 'redis'],
  reactor: ['eventStore', 'bus', 'redis'],
  scheduler: ['eventStore', 'readStore', 'redis'],
  payments: [],
  sandbox: [],
};

export function partsUsedBy(roles: Iterable<RoleName>, health: PartMonitor): string[] {
  const used = new Set<string>();
  for (const role of roles) for (const part of PARTS_BY_ROLE[role]) if (health.has(part)) used.add(part);
  return [...used];
}

/** One readiness check per part the roles use, read from the monitor (no probe per request). */
export function partReadiness(roles: Iterable<RoleName>, health: PartMonitor): ReadinessCheck[] {
  return partsUsedBy(roles, health).map((name) => ({
    name,
    check: async () => {
      const s = health.status(name);
      if (s && !s.up) throw new Error(`${s.description} is down since ${s.since}: ${s.error ?? 'no answer'}`);
    },
  }));
}

/**
 * The parts a command needs before it can answer: the event store (the command's events, and the
 * idempotency keys next to them on SQL), and Redis when it holds the rate-limit counters or the
 * idempotency keys (EventStoreDB). While one is down, commands are refused at once with 503.
 */
export function commandNeeds(config: Config, parts: PlatformParts): () => PartStatus[] {
  const sql = config.eventStore === 'embedded' || config.eventStore.startsWith('postgres');
  const redisNeeded = parts.redis !== undefined && (config.rateLimit > 0 || config.rateLimitIp > 0 || !sql);
  const needs = ['eventStore', ...(redisNeeded ? ['redis'] : [])];
  return () => parts.health.down(needs);
}
