import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { ERR_CONFIG_INVALID, SettleError } from './errors.js';

type Parser<T> = (raw: string) => T;

interface Key<T> {
  env: string;
  doc: string;
  default: T;
  parse: Parser<T>;
}

const str: Parser<string> = (raw) => raw;
const int =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`must be an integer from ${min} to ${max}`);
    return n;
  };
const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw) => {
    if (!values.includes(raw as T)) throw new Error(`must be one of ${values.join(', ')}`);
    return raw as T;
  };
const url =
  (...schemes: string[]): Parser<string> =>
  (raw) => {
    if (raw === 'embedded') return raw;
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new Error(`must be "embedded" or a URL (${schemes.map((s) => `${s}//…`).join(', ')})`);
    }
    if (!schemes.includes(parsed.protocol)) throw new Error(`must use one of ${schemes.join(', ')} or be "embedded"`);
    return raw;
  };
const durations: Parser<number[]> = (raw) => {
  const list = raw.split(',').map((s) => parseDuration(s.trim()));
  if (list.length === 0) throw new Error('must be a comma-separated list of durations such as 1s,2s,4s');
  return list;
};
const bool: Parser<boolean> = (raw) => {
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new Error('must be true or false');
};

const cidrs: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((range) => {
      const [address = '', prefix, extra] = range.split('/');
      const family = isIP(address);
      const width = family === 4 ? 32 : 128;
      if (
        family === 0 ||
        extra !== undefined ||
        (prefix !== undefined && (!/^\d+$/.test(prefix) || Number(prefix) > width))
      )
        throw new Error(`"${range}" is not a CIDR range such as 10.0.0.0/8 or fd00::/8`);
      return range;
    });

/** "250ms", "2s", "5m", "1h", "30d" → milliseconds. */
export function parseDuration(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(raw);
  if (!m) throw new Error(`"${raw}" is not a duration such as 500ms, 2s, 5m, 1h or 30d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  return Math.round(Number(m[1]) * unit);
}

const schema = {
  env: {
    env: 'SETTLE_ENV',
    doc: 'development or production',
    default: 'development',
    parse: oneOf('development', 'production'),
  },
  eventStore: {
    env: 'SETTLE_EVENT_STORE',
    doc: 'embedded (PGlite under dataDir), postgres://… or esdb://…',
    default: 'embedded',
    parse: url('postgres:', 'postgresql:', 'esdb:', 'esdb+discover:', 'kurrentdb:'),
  },
  bus: {
    env: 'SETTLE_BUS',
    doc: 'embedded or kafka://host:port,…',
    default: 'embedded',
    parse: (raw: string) => {
      if (raw === 'embedded') return raw;
      const m = /^kafka:\/\/([^/?#]+)\/?$/.exec(raw);
      const brokers = m ? m[1]!.split(',') : [];
      if (brokers.length === 0 || brokers.some((b) => !/^[A-Za-z0-9.[\]:_-]+:\d{1,5}$/.test(b.trim())))
        throw new Error('must be "embedded" or kafka://host:port[,host:port…]');
      return raw;
    },
  },
  readStore: {
    env: 'SETTLE_READ_STORE',
    doc: 'embedded or mongodb://…',
    default: 'embedded',
    parse: url('mongodb:', 'mongodb+srv:'),
  },
  redisUrl: {
    env: 'SETTLE_REDIS_URL',
    doc: 'Redis for cache, locks, rate limits and pub/sub; unset = in-process',
    default: '',
    parse: (raw: string) => (raw === '' ? '' : url('redis:', 'rediss:')(raw)),
  },
  kafkaTopicPrefix: {
    env: 'SETTLE_KAFKA_TOPIC_PREFIX',
    doc: 'Kafka topic and consumer-group prefix',
    default: 'settle.',
    parse: str,
  },
  redisPrefix: {
    env: 'SETTLE_REDIS_PREFIX',
    doc: 'prefix of every Redis key Settle writes',
    default: 'settle:',
    parse: str,
  },
  dataDir: { env: 'SETTLE_DATA_DIR', doc: 'where the embedded parts keep their files', default: './data', parse: str },
  archiveDir: {
    env: 'SETTLE_ARCHIVE_DIR',
    doc: 'where `settle archive` writes archived streams (gzipped JSON lines); default <SETTLE_DATA_DIR>/archive',
    default: '',
    parse: str,
  },
  host: { env: 'SETTLE_HOST', doc: 'interface the servers listen on', default: '127.0.0.1', parse: str },
  httpPort: { env: 'SETTLE_HTTP_PORT', doc: 'REST and GraphQL', default: 3000, parse: int(0, 65535) },
  grpcPort: { env: 'SETTLE_GRPC_PORT', doc: 'gRPC payments service', default: 50051, parse: int(0, 65535) },
  sandboxPort: { env: 'SETTLE_SANDBOX_PORT', doc: 'gateway sandbox', default: 4010, parse: int(0, 65535) },
  paymentsUrl: {
    env: 'SETTLE_PAYMENTS_URL',
    doc: 'where the dispatcher reaches the payments service (host:port); default: this process',
    default: '',
    parse: str,
  },
  gatewayUrl: {
    env: 'SETTLE_GATEWAY_URL',
    doc: 'payment gateway base URL; default: the sandbox in this process',
    default: '',
    parse: str,
  },
  publicUrl: {
    env: 'SETTLE_PUBLIC_URL',
    doc: 'the URL the gateway calls back; default http://127.0.0.1:<httpPort>',
    default: '',
    parse: str,
  },
  gatewayTimeoutMs: { env: 'SETTLE_GATEWAY_TIMEOUT', doc: 'gateway call timeout', default: 1500, parse: parseDuration },
  gatewayWebhookSecret: {
    env: 'SETTLE_GATEWAY_WEBHOOK_SECRET',
    doc: 'Standard Webhooks secret the gateway signs callbacks with',
    default: 'whsec_c2V0dGxlLXNhbmRib3gtY2FsbGJhY2stc2VjcmV0LTAx',
    parse: str,
  },
  jwtPrivateKey: {
    env: 'SETTLE_JWT_PRIVATE_KEY',
    doc: 'PKCS#8 PEM Ed25519 signing key; development generates one under dataDir',
    default: '',
    parse: str,
  },
  jwtIssuer: { env: 'SETTLE_JWT_ISSUER', doc: 'iss of access tokens', default: 'https://settle.local', parse: str },
  jwtAudience: { env: 'SETTLE_JWT_AUDIENCE', doc: 'aud of access tokens', default: 'settle-api', parse: str },
  jwtPreviousKeys: {
    env: 'SETTLE_JWT_PREVIOUS_KEYS',
    doc: 'keys rotated out that still verify and are published in the JWKS: PEMs (public or private) or comma-separated file paths',
    default: '',
    parse: str,
  },
  secretsKey: {
    env: 'SETTLE_SECRETS_KEY',
    doc: '32-byte AES-256-GCM key (hex or base64) sealing webhook secrets in client events; development generates one under dataDir',
    default: '',
    parse: str,
  },
  rateLimit: {
    env: 'SETTLE_RATE_LIMIT',
    doc: 'REST requests per minute per API client (0 = no limit)',
    default: 6000,
    parse: int(0, 10_000_000),
  },
  rateLimitIp: {
    env: 'SETTLE_RATE_LIMIT_IP',
    doc: 'REST requests per minute per client IP (0 = no limit)',
    default: 30000,
    parse: int(0, 10_000_000),
  },
  loginFailureLimit: {
    env: 'SETTLE_LOGIN_FAILURE_LIMIT',
    doc: 'failed POST /v1/auth/token attempts per minute, per client_id and per IP, before 429',
    default: 10,
    parse: int(1, 100_000),
  },
  trustProxy: {
    env: 'SETTLE_TRUST_PROXY',
    doc: 'trust X-Forwarded-For from these proxies (comma-separated IPs/CIDRs; "true" = any) for per-IP limits',
    default: '',
    parse: str,
  },
  corsOrigins: {
    env: 'SETTLE_CORS_ORIGINS',
    doc: 'origins allowed to call the API from a browser (comma-separated; unset = none)',
    default: '',
    parse: str,
  },
  tlsCert: {
    env: 'SETTLE_TLS_CERT',
    doc: 'PEM certificate file: serve HTTP over TLS (with SETTLE_TLS_KEY)',
    default: '',
    parse: str,
  },
  tlsKey: { env: 'SETTLE_TLS_KEY', doc: 'PEM private key file for SETTLE_TLS_CERT', default: '', parse: str },
  grpcTlsCert: {
    env: 'SETTLE_GRPC_TLS_CERT',
    doc: 'PEM certificate file for the gRPC payments service (with SETTLE_GRPC_TLS_KEY)',
    default: '',
    parse: str,
  },
  grpcTlsKey: {
    env: 'SETTLE_GRPC_TLS_KEY',
    doc: 'PEM private key file for SETTLE_GRPC_TLS_CERT',
    default: '',
    parse: str,
  },
  grpcTlsCa: {
    env: 'SETTLE_GRPC_TLS_CA',
    doc: 'PEM CA file: the dispatcher trusts it for the payments service; with cert and key set, the service requires client certificates from it (mTLS)',
    default: '',
    parse: str,
  },
  accessTokenTtlS: {
    env: 'SETTLE_ACCESS_TOKEN_TTL',
    doc: 'access token lifetime',
    default: 900,
    parse: (raw: string) => parseDuration(raw) / 1000,
  },
  retryDelaysMs: {
    env: 'SETTLE_RETRY_SCHEDULE',
    doc: 'delays between payment attempts (last repeats); development 1s,2s,4s,8s',
    default: [] as number[],
    parse: durations,
  },
  maxAttempts: { env: 'SETTLE_MAX_ATTEMPTS', doc: 'payment attempts in all', default: 5, parse: int(1, 100) },
  notifyDelaysMs: {
    env: 'SETTLE_NOTIFY_SCHEDULE',
    doc: 'delays between merchant webhook attempts',
    default: [] as number[],
    parse: durations,
  },
  notifyMaxAttempts: {
    env: 'SETTLE_NOTIFY_MAX_ATTEMPTS',
    doc: 'merchant webhook attempts in all',
    default: 6,
    parse: int(1, 100),
  },
  bodyLimit: {
    env: 'SETTLE_BODY_LIMIT',
    doc: 'largest accepted request body in bytes',
    default: 1_048_576,
    parse: int(1024, 100 * 1_048_576),
  },
  logLevel: {
    env: 'SETTLE_LOG_LEVEL',
    doc: 'pino level',
    default: 'info',
    parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  },
  graphiql: {
    env: 'SETTLE_GRAPHIQL',
    doc: 'serve GraphiQL at /graphiql (default: development only)',
    default: undefined as boolean | undefined,
    parse: bool,
  },
  graphqlIntrospection: {
    env: 'SETTLE_GRAPHQL_INTROSPECTION',
    doc: 'answer GraphQL introspection queries (default: development only)',
    default: undefined as boolean | undefined,
    parse: bool,
  },
  callbackAllowlist: {
    env: 'SETTLE_CALLBACK_ALLOWLIST',
    doc: 'comma-separated CIDR ranges merchant callback URLs may reach although private (internal deployments)',
    default: [] as string[],
    parse: cidrs,
  },
  pgStatementTimeoutMs: {
    env: 'SETTLE_PG_STATEMENT_TIMEOUT',
    doc: 'PostgreSQL event store: a statement (or an idle transaction) running longer is cancelled and rolled back; an append then fails with 503, nothing stored',
    default: 30_000,
    parse: parseDuration,
  },
  pgLongStatementTimeoutMs: {
    env: 'SETTLE_PG_LONG_STATEMENT_TIMEOUT',
    doc: 'PostgreSQL event store: timeout of the schema set-up and ANALYZE at start',
    default: 600_000,
    parse: parseDuration,
  },
  readWaitMs: {
    env: 'SETTLE_READ_WAIT',
    doc: 'longest wait for minPosition in GraphQL',
    default: 2000,
    parse: parseDuration,
  },
  poisonReference: {
    env: 'SETTLE_DEV_POISON_REFERENCE',
    doc: 'development only: the requests projection throws on PaymentAuthorized of requests whose reference starts with this (to try parking); refused in production',
    default: '',
    parse: str,
  },
  reactorConcurrency: {
    env: 'SETTLE_REACTOR_CONCURRENCY',
    doc: 'events handled at once per reactor',
    default: 32,
    parse: int(1, 1024),
  },
} satisfies Record<string, Key<unknown>>;

type Schema = typeof schema;
export type Config = { [K in keyof Schema]: Schema[K]['default'] } & { production: boolean };

/** Every configuration key with its environment variable, default and doc line. */
export const CONFIG_KEYS: readonly { key: string; env: string; doc: string; default: unknown }[] = Object.entries(
  schema,
).map(([key, k]) => ({ key, env: k.env, doc: k.doc, default: k.default }));

function readDotEnv(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

/**
 * Reads the configuration from the environment (and an optional `.env`), validating every key
 * and failing with one message that lists every bad value.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, dotEnvPath = '.env'): Config {
  const source = { ...readDotEnv(dotEnvPath), ...env };
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, k] of Object.entries(schema) as [string, Key<unknown>][]) {
    const raw = source[k.env];
    if (raw === undefined || raw === '') {
      out[key] = k.default;
      continue;
    }
    try {
      out[key] = k.parse(raw);
    } catch (error) {
      problems.push(`${k.env}=${JSON.stringify(raw)}: ${(error as Error).message}`);
    }
  }
  if (Boolean(out.tlsCert) !== Boolean(out.tlsKey))
    problems.push('SETTLE_TLS_CERT and SETTLE_TLS_KEY go together: set both or neither');
  if (Boolean(out.grpcTlsCert) !== Boolean(out.grpcTlsKey))
    problems.push('SETTLE_GRPC_TLS_CERT and SETTLE_GRPC_TLS_KEY go together: set both or neither');
  if (problems.length > 0)
    throw new SettleError(ERR_CONFIG_INVALID, `invalid configuration:\n  ${problems.join('\n  ')}`);
  const config = out as Config;
  config.production = config.env === 'production';
  const dev = !config.production;
  if ((config.retryDelaysMs as number[]).length === 0)
    config.retryDelaysMs = dev ? [1000, 2000, 4000, 8000] : [30_000, 120_000, 600_000, 3_600_000];
  if ((config.notifyDelaysMs as number[]).length === 0)
    config.notifyDelaysMs = dev ? [1000, 2000, 4000, 8000, 16_000] : [5000, 300_000, 1_800_000, 7_200_000, 18_000_000];
  if (config.archiveDir === '') config.archiveDir = join(config.dataDir, 'archive');
  if (config.graphiql === undefined) config.graphiql = dev;
  if (config.graphqlIntrospection === undefined) config.graphqlIntrospection = dev;
  if (config.production) {
    const bad: string[] = [];
    if (!config.jwtPrivateKey) bad.push('SETTLE_JWT_PRIVATE_KEY must be set in production (no default keys)');
    if (!config.secretsKey)
      bad.push('SETTLE_SECRETS_KEY must be set in production (webhook secrets are sealed with it)');
    if (config.gatewayWebhookSecret === schema.gatewayWebhookSecret.default)
      bad.push('SETTLE_GATEWAY_WEBHOOK_SECRET must be set in production (the default is public)');
    if (config.poisonReference) bad.push('SETTLE_DEV_POISON_REFERENCE is for development only: unset it in production');
    if (bad.length > 0) throw new SettleError(ERR_CONFIG_INVALID, `invalid configuration:\n  ${bad.join('\n  ')}`);
  }
  return config;
}
