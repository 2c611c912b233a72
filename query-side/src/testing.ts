import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { paymentRequestDecider, type PaymentRequestCommand } from '@settle/domain';
import {
  MemoryCache,
  MemoryClientRegistry,
  MemoryReadStore,
  SqlEventStore,
  TokenService,
  createMemoryPubSub,
  createPgliteClient,
  handleCommand,
  seedDemoClients,
  silentLogger,
} from '@settle/platform';
import { ALL_PROJECTIONS, ProjectionOperations, Projector, type Projection } from '@settle/projections';
import type { FastifyInstance } from 'fastify';
import type { QueryDeps } from './context.js';
import { buildQueryApp } from './plugin.js';

export const DEMO_MERCHANT = 'demo-merchant';
export const DEMO_MERCHANT_2 = 'demo-merchant-2';
export const DEMO_OPERATOR = 'demo-operator';

const RETRY = { maxAttempts: 3, delaysMs: [1000] };

export interface GraphQLResponse<T = Record<string, unknown>> {
  statusCode: number;
  body: {
    data?: T | null;
    errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
    extensions?: Record<string, unknown>;
  };
}

/**
 * The query side over real embedded parts: PGlite in memory, the in-process read store, cache
 * and pub/sub, a running projector with every projection, real signed tokens for the demo clients.
 */
export async function createHarness(
  overrides: Partial<QueryDeps> = {},
  opts: { projections?: Projection[]; parkedPollMs?: number; rebuildBatchSize?: number } = {},
) {
  const eventStore = await SqlEventStore.create(await createPgliteClient(undefined));
  const readStore = new MemoryReadStore();
  const cache = new MemoryCache();
  const pubsub = createMemoryPubSub();
  const logger = silentLogger();
  const projector = new Projector(opts.projections ?? ALL_PROJECTIONS, {
    eventStore,
    readStore,
    logger,
    pubsub,
    cache,
    ...(opts.parkedPollMs !== undefined ? { parkedPollMs: opts.parkedPollMs } : {}),
  });
  await projector.start();
  const { privateKey } = generateKeyPairSync('ed25519');
  const tokens = new TokenService({
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    issuer: 'https://settle.test',
    audience: 'settle-api',
    accessTtlS: 900,
  });
  const clients = new MemoryClientRegistry();
  await seedDemoClients(clients);
  // As the composition root wires it: readers see each read model's live version; rebuilds run here.
  const operations = new ProjectionOperations({
    eventStore,
    readStore,
    projections: opts.projections ?? ALL_PROJECTIONS,
    logger,
    pubsub,
    ...(opts.rebuildBatchSize !== undefined ? { batchSize: opts.rebuildBatchSize } : {}),
  });
  const deps: QueryDeps = {
    readStore: projector.versions.readStore,
    operations,
    clients,
    eventStore,
    projector,
    tokens,
    pubsub,
    cache,
    logger,
    graphiql: false,
    readWaitMs: 2000,
    ...overrides,
  };
  const app: FastifyInstance = await buildQueryApp(deps);

  const tokenFor = async (clientId: string): Promise<string> => {
    const client = await clients.get(clientId);
    if (!client) throw new Error(`no demo client ${clientId}`);
    return (await tokens.issue(client)).access_token;
  };
  const token = {
    merchant: await tokenFor(DEMO_MERCHANT),
    merchant2: await tokenFor(DEMO_MERCHANT_2),
    operator: await tokenFor(DEMO_OPERATOR),
  };

  async function gql<T = Record<string, unknown>>(
    bearer: string | undefined,
    query: string,
    variables: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ): Promise<GraphQLResponse<T>> {
    const res = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { ...(bearer !== undefined ? { authorization: `Bearer ${bearer}` } : {}), ...headers },
      payload: { query, variables },
    });
    return { statusCode: res.statusCode, body: res.json() };
  }

  /** Appends a command to a request stream; answers the global position of what it wrote. */
  async function command(id: string, cmd: PaymentRequestCommand): Promise<number> {
    const { position } = await handleCommand(eventStore, `request-${id}`, paymentRequestDecider, cmd);
    return position;
  }

  async function register(merchantId: string, fields: { amount?: number; currency?: string; reference?: string } = {}) {
    const id = randomUUID();
    const position = await command(id, {
      type: 'RegisterRequest',
      data: {
        requestId: id,
        authId: `auth_${randomUUID().replaceAll('-', '')}`,
        merchantId,
        amount: fields.amount ?? 1250,
        currency: fields.currency ?? 'EUR',
        reference: fields.reference ?? `order-${id.slice(0, 8)}`,
        description: 'Test payment',
        callbackUrl: 'https://merchant.example/settle',
        now: new Date().toISOString(),
      },
    });
    return { id, position };
  }

  const startAttempt = (id: string) =>
    command(id, { type: 'StartAuthorization', data: { attempt: 1, now: new Date().toISOString() } });

  const authorize = (id: string) =>
    command(id, {
      type: 'RecordAuthorizationOutcome',
      data: {
        attempt: 1,
        outcome: { kind: 'authorized', providerPaymentId: `pay_${id.slice(0, 8)}` },
        now: new Date().toISOString(),
        retry: RETRY,
      },
    });

  const capture = (id: string) =>
    command(id, {
      type: 'ReceiveCallback',
      data: {
        provider: 'sandbox',
        providerEventId: `evt_${id}`,
        eventType: 'payment.captured',
        providerPaymentId: `pay_${id.slice(0, 8)}`,
        now: new Date().toISOString(),
      },
    });

  /** REGISTERED → AUTHORIZING → AUTHORIZED → SETTLED. */
  async function settle(id: string): Promise<number> {
    await startAttempt(id);
    await authorize(id);
    return capture(id);
  }

  async function decline(id: string): Promise<number> {
    await startAttempt(id);
    return command(id, {
      type: 'RecordAuthorizationOutcome',
      data: {
        attempt: 1,
        outcome: { kind: 'declined', reason: 'insufficient funds' },
        now: new Date().toISOString(),
        retry: RETRY,
      },
    });
  }

  const cancel = (id: string) =>
    command(id, { type: 'CancelRequest', data: { reason: 'customer asked', by: 'merchant' } });

  async function caughtUp(position: number): Promise<void> {
    if (!(await projector.waitFor(position, 5000))) throw new Error(`projector did not reach ${position}`);
  }

  async function close(): Promise<void> {
    await operations.stop();
    await app.close();
    await projector.stop();
    await eventStore.close();
  }

  return {
    app,
    deps,
    clients,
    eventStore,
    readStore,
    cache,
    pubsub,
    projector,
    operations,
    tokens,
    token,
    tokenFor,
    gql,
    command,
    register,
    startAttempt,
    authorize,
    capture,
    settle,
    decline,
    cancel,
    caughtUp,
    close,
  };
}

export type Harness = Awaited<ReturnType<typeof createHarness>>;
