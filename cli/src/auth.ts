import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEMO_CLIENTS,
  ERR_CONFIG_INVALID,
  EventSourcedClientRegistry,
  loadOrCreateSecretsKey,
  loadOrCreateSigningKey,
  loadPreviousKeys,
  SecretBox,
  SettleError,
  SqlEventStore,
  SqlRefreshTokenStore,
  TokenService,
  type Config,
  type EventStore,
  type Logger,
} from '@settle/platform';

/**
 * API clients and tokens: the event-sourced client registry (demo clients seeded in development),
 * webhook secrets sealed with SETTLE_SECRETS_KEY, the signing key plus previous keys, and refresh
 * tokens in the event store's database when it is SQL (shared by replicas, durable), else in memory.
 */
export async function createAuth(config: Config, eventStore: EventStore, logger: Logger) {
  const keysDir = join(config.dataDir, 'keys');
  const secrets = new SecretBox(await loadOrCreateSecretsKey(config.secretsKey, join(keysDir, 'secrets.key')));
  const clients = new EventSourcedClientRegistry({ eventStore, secrets, logger: logger.child({ part: 'clients' }) });
  await clients.start();
  if (!config.production) await clients.seedDemoClients();
  else {
    const demo: string[] = [];
    for (const d of DEMO_CLIENTS) if ((await clients.get(d.id))?.disabled === false) demo.push(d.id);
    if (demo.length > 0) {
      await clients.stop();
      throw new SettleError(
        ERR_CONFIG_INVALID,
        `production refuses to start with demo clients enabled: disable ${demo.join(', ')} (npx settle clients disable <id>)`,
      );
    }
  }
  const privateKeyPem = await loadOrCreateSigningKey(config.jwtPrivateKey, join(keysDir, 'jwt-ed25519.pem'));
  const tokens = new TokenService({
    privateKeyPem,
    previousKeys: await loadPreviousKeys(config.jwtPreviousKeys),
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    accessTtlS: config.accessTokenTtlS,
    ...(eventStore instanceof SqlEventStore
      ? { refreshStore: await SqlRefreshTokenStore.create(eventStore.client) }
      : {}),
  });
  return { clients, tokens };
}

/** HTTPS options for createHttpApp from SETTLE_TLS_CERT / SETTLE_TLS_KEY, or undefined. */
export function httpsOptions(config: Config): { cert: Buffer; key: Buffer } | undefined {
  return config.tlsCert && config.tlsKey
    ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) }
    : undefined;
}

/** SETTLE_TRUST_PROXY: "true", or a list of proxy addresses/CIDRs; unset trusts no proxy. */
export function trustProxyOption(config: Config): boolean | string[] | undefined {
  const raw = config.trustProxy.trim();
  if (!raw) return undefined;
  if (raw === 'true') return true;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
