import { CONFIG_KEYS } from '@settle/platform';

/**
 * Settings every benchmarked Settle gets: request rate limits off (the benchmark measures the
 * request path, not the limiter's 429s), for whichever of those keys this build has.
 */
export function benchSettleEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of CONFIG_KEYS) if (/\(0 = no limit\)/.test(k.doc) && /RATE_LIMIT/.test(k.env)) env[k.env] = '0';
  return env;
}

/** Whether this build knows a configuration variable (features being wired while the bench runs). */
export const hasConfigKey = (env: string): boolean => CONFIG_KEYS.some((k) => k.env === env);
