import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  createMetrics,
  createPgliteClient,
  DEMO_SECRET,
  EventSourcedClientRegistry,
  SecretBox,
  SqlEventStore,
  SqlIdempotencyStore,
  SqlRefreshTokenStore,
  TokenService,
  silentLogger,
  type Logger,
  type TokenServiceOptions,
} from '@settle/platform';
import type { FastifyInstance } from 'fastify';
import { commandPlugin, createHttpApp, type CommandDeps, type HttpAppOptions } from '../app.js';
import { createCallbackUrlPolicy } from '../requests/callbackUrl.js';

export const ISSUER = 'https://settle.test';
export const AUDIENCE = 'settle-api';

export const newSigningKey = (): string =>
  generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

export interface TestAppOptions {
  logger?: Logger;
  rateLimits?: CommandDeps['rateLimits'];
  tokens?: Partial<TokenServiceOptions>;
  now?: () => number;
  http?: Partial<Pick<HttpAppOptions, 'https' | 'corsOrigins' | 'trustProxy' | 'readiness'>>;
  unavailable?: CommandDeps['unavailable'];
}

/**
 * The REST command side over real embedded parts: PGlite in memory, the event-sourced client
 * registry with the demo clients seeded as events, the SQL refresh-token store, real EdDSA tokens.
 */
export async function createTestApp(opts: TestAppOptions = {}) {
  const eventStore = await SqlEventStore.create(await createPgliteClient(undefined), { pollMs: 50 });
  const secrets = new SecretBox(randomBytes(32));
  const clients = new EventSourcedClientRegistry({ eventStore, secrets });
  await clients.start();
  await clients.seedDemoClients();
  const privateKeyPem = opts.tokens?.privateKeyPem ?? newSigningKey();
  const tokens = new TokenService({
    issuer: ISSUER,
    audience: AUDIENCE,
    accessTtlS: 900,
    refreshStore: await SqlRefreshTokenStore.create(eventStore.client),
    ...(opts.now ? { now: opts.now } : {}),
    ...opts.tokens,
    privateKeyPem,
  });
  const metrics = createMetrics();
  const app: FastifyInstance = await createHttpApp({
    logger: opts.logger ?? silentLogger(),
    metrics,
    bodyLimit: 1_048_576,
    readiness: [],
    ...opts.http,
  });
  await app.register(commandPlugin, {
    eventStore,
    idempotency: new SqlIdempotencyStore(eventStore.client),
    tokens,
    clients,
    metrics,
    callbackUrls: createCallbackUrlPolicy({ production: false }),
    gatewayProviders: {},
    rateLimits: opts.rateLimits ?? { perClient: 0, perIp: 0, loginFailures: 1000 },
    ...(opts.unavailable ? { unavailable: opts.unavailable } : {}),
  });
  await app.ready();

  async function token(
    clientId: string,
    secret = DEMO_SECRET,
  ): Promise<{ access_token: string; refresh_token: string }> {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      payload: { grant_type: 'client_credentials', client_id: clientId, client_secret: secret },
    });
    if (res.statusCode !== 200) throw new Error(`token for ${clientId}: ${res.statusCode} ${res.body}`);
    return res.json();
  }

  return {
    app,
    eventStore,
    clients,
    tokens,
    secrets,
    privateKeyPem,
    token,
    bearer: async (clientId: string, secret?: string) => ({
      authorization: `Bearer ${(await token(clientId, secret)).access_token}`,
    }),
    async close() {
      await app.close();
      await clients.stop();
      await eventStore.close();
    },
  };
}

export type TestApp = Awaited<ReturnType<typeof createTestApp>>;
