import pino, { type Logger } from 'pino';
import { currentContext } from './context.js';

export type { Logger } from 'pino';

/** Paths never written to logs: credentials, tokens, signatures. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["webhook-signature"]',
  'headers.authorization',
  'client_secret',
  'refresh_token',
  'access_token',
  '*.client_secret',
  '*.refresh_token',
  '*.access_token',
  '*.password',
  '*.secret',
  '*.webhookSecret',
  'webhook_secret',
  '*.webhook_secret',
  'req.body.client_secret',
  'req.body.refresh_token',
  '*.clientSecret',
  '*.secretHash',
  'req.headers["x-api-key"]',
  'req.headers["proxy-authorization"]',
];

/** The root logger; every line carries the correlation, causation and trace ids of the work in progress. */
export function createLogger(opts: { level?: string; name?: string; pretty?: boolean } = {}): Logger {
  return pino({
    ...(opts.pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,name' } } }
      : {}),
    name: opts.name ?? 'settle',
    level: opts.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    mixin() {
      const ctx = currentContext();
      if (!ctx) return {};
      const traceId = ctx.traceparent?.split('-')[1];
      return {
        correlationId: ctx.correlationId,
        ...(ctx.causationId ? { causationId: ctx.causationId } : {}),
        ...(ctx.actor ? { actor: ctx.actor } : {}),
        ...(traceId ? { traceId } : {}),
      };
    },
  });
}

export const silentLogger = (): Logger => pino({ level: 'silent' });
