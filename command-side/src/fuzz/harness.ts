import { generateKeyPairSync } from 'node:crypto';
import {
  MemoryClientRegistry,
  MemoryIdempotencyStore,
  SqlEventStore,
  TokenService,
  createMetrics,
  createPgliteClient,
  seedDemoClients,
  silentLogger,
} from '@settle/platform';
import type { FastifyInstance } from 'fastify';
import { commandPlugin, createHttpApp, type CommandDeps } from '../app.js';
import { createCallbackUrlPolicy } from '../requests/callbackUrl.js';

export const GATEWAY_SECRET = 'whsec_c2V0dGxlLXNhbmRib3gtY2FsbGJhY2stc2VjcmV0LTAx';

/** Host names the harness resolves without DNS, to exercise the callback URL policy. */
export const FAKE_DNS: Record<string, string[]> = {
  'merchant.example': ['93.184.215.14'],
  'metadata.example': ['169.254.169.254'],
  'rebind.example': ['93.184.215.14', '10.0.0.7'],
  localhost: ['127.0.0.1'],
};

/**
 * The REST command side in-process (not listening) over real embedded parts: PGlite in memory,
 * the in-process idempotency store, real Ed25519 tokens for the demo clients. Rate limits are
 * off so a fuzz run of thousands of requests meets the validation it is aimed at.
 */
export async function createCommandHarness(opts: { production?: boolean } = {}) {
  const eventStore = await SqlEventStore.create(await createPgliteClient(undefined));
  const metrics = createMetrics();
  const { privateKey } = generateKeyPairSync('ed25519');
  const tokens = new TokenService({
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    issuer: 'https://settle.test',
    audience: 'settle-api',
    accessTtlS: 900,
  });
  const clients = new MemoryClientRegistry();
  await seedDemoClients(clients);
  const app: FastifyInstance = await createHttpApp({
    logger: silentLogger(),
    metrics,
    bodyLimit: 1_048_576,
    readiness: [],
  });
  const deps = {
    eventStore,
    idempotency: new MemoryIdempotencyStore(),
    tokens,
    clients,
    metrics,
    callbackUrls: createCallbackUrlPolicy({
      production: opts.production ?? false,
      resolve: async (host) => {
        const hit = FAKE_DNS[host];
        if (!hit) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
        return hit;
      },
    }),
    gatewayProviders: { sandbox: GATEWAY_SECRET },
    rateLimits: { perClient: 0, perIp: 0, loginFailures: 1_000_000 },
  };
  await app.register(commandPlugin, deps as CommandDeps);
  await app.ready();

  const tokenFor = async (clientId: string): Promise<string> => {
    const client = await clients.get(clientId);
    if (!client) throw new Error(`no demo client ${clientId}`);
    return (await tokens.issue(client)).access_token;
  };
  const token = {
    merchant: await tokenFor('demo-merchant'),
    merchant2: await tokenFor('demo-merchant-2'),
    operator: await tokenFor('demo-operator'),
  };

  return {
    app,
    eventStore,
    metrics,
    token,
    /** The global position of the last event stored; unchanged means nothing was appended. */
    head: () => eventStore.headPosition(),
    async close() {
      await app.close();
      await eventStore.close();
    },
  };
}

export type CommandHarness = Awaited<ReturnType<typeof createCommandHarness>>;
