import { join } from 'node:path';
import {
  commandPlugin,
  createAddressPolicy,
  createOpsApp,
  createCallbackUrlPolicy,
  createHttpApp,
  parseCorsOrigins,
  type ReadinessCheck,
} from '@settle/command-side';
import { createLogger, loadConfig, SettleError, type Config, type Consumer, type Logger } from '@settle/platform';
import { buildSandbox, createGatewayClient, startPaymentsServer } from '@settle/payments';
import {
  ALL_PROJECTIONS,
  LiveVersions,
  ProjectionOperations,
  Projector,
  withPoisonReference,
} from '@settle/projections';
import { createPaymentsClient, grpcClientCredentials, grpcServerCredentials } from '@settle/proto';
import { queryPlugin } from '@settle/query-side';
import { createDispatcher, createNotifier, createSafeFetch, createScheduler } from '@settle/reactors';
import type { FastifyInstance } from 'fastify';
import { createAuth, httpsOptions, trustProxyOption } from './auth.js';
import { operatorParts } from './operatorParts.js';
import { commandNeeds, partReadiness } from './health.js';
import { createPlatform } from './wiring.js';

export const ROLES = ['command', 'query', 'projector', 'reactor', 'scheduler', 'payments', 'sandbox'] as const;
export type RoleName = (typeof ROLES)[number];

export interface RunningSettle {
  config: Config;
  /** Where this process serves HTTP: the APIs (command, query roles) or only health and metrics. */
  httpUrl: string;
  stop(): Promise<void>;
}

export const ERR_PORT_IN_USE = 'SETTLE_ERR_STARTUP_PORT_IN_USE';

/**
 * Listens, or fails start-up naming the setting when the port is taken: every Settle process
 * serves HTTP (worker roles their health and metrics), so processes sharing a host each need
 * their own SETTLE_HTTP_PORT.
 */
async function listenOn(setting: string, port: number, listen: () => Promise<unknown>): Promise<void> {
  try {
    await listen();
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code !== 'EADDRINUSE' && !/EADDRINUSE|address already in use/i.test(e.message ?? '')) throw error;
    throw new SettleError(
      ERR_PORT_IN_USE,
      `${setting}=${port}: the port is already in use (another Settle process on this host? give each its own ${setting})`,
    );
  }
}

/**
 * Starts the chosen roles in this process on the configured parts. All roles (the default)
 * is the embedded all-in-one Settle; in production each role is its own deployment.
 */
export async function startSettle(
  opts: { roles?: RoleName[]; env?: Record<string, string | undefined>; logger?: Logger } = {},
): Promise<RunningSettle> {
  const config = loadConfig(opts.env ?? process.env);
  const roles = new Set<RoleName>(opts.roles ?? ROLES);
  const logger = opts.logger ?? createLogger({ level: config.logLevel });
  logger.info({ env: config.env, roles: [...roles] }, 'starting Settle');
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        logger.warn({ err: error }, 'error while stopping');
      }
    }
  };

  try {
    const parts = await createPlatform(config, logger, { forward: roles.has('reactor') });
    stops.push(() => parts.close());
    const publicUrl = config.publicUrl || `http://127.0.0.1:${config.httpPort}`;

    const { clients, tokens } = await createAuth(config, parts.eventStore, logger);
    stops.push(() => clients.stop());
    const grpcTls = { cert: config.grpcTlsCert, key: config.grpcTlsKey, ca: config.grpcTlsCa };

    // The gateway sandbox and the gRPC payments service.
    const gatewayUrl = config.gatewayUrl || `http://127.0.0.1:${config.sandboxPort}`;
    if (roles.has('sandbox')) {
      const sandbox = buildSandbox({
        logger: logger.child({ role: 'sandbox' }),
        callbackUrl: `${publicUrl}/v1/callbacks/sandbox`,
        webhookSecret: config.gatewayWebhookSecret,
        stateFile: join(config.dataDir, 'sandbox', 'journal.jsonl'),
      });
      await listenOn('SETTLE_SANDBOX_PORT', config.sandboxPort, () =>
        sandbox.listen({ port: config.sandboxPort, host: config.host }),
      );
      stops.push(() => sandbox.close());
      logger.info({ port: config.sandboxPort }, 'gateway sandbox listening');
    }
    if (roles.has('payments')) {
      const gateway = createGatewayClient({
        baseUrl: gatewayUrl,
        timeoutMs: config.gatewayTimeoutMs,
        logger: logger.child({ role: 'payments' }),
      });
      const credentials = grpcServerCredentials(grpcTls);
      let server!: Awaited<ReturnType<typeof startPaymentsServer>>;
      await listenOn('SETTLE_GRPC_PORT', config.grpcPort, async () => {
        server = await startPaymentsServer({
          port: config.grpcPort,
          host: config.host,
          gateway,
          logger: logger.child({ role: 'payments' }),
          ...(credentials ? { credentials } : {}),
        });
      });
      stops.push(async () => {
        await server.close();
        await gateway.close();
      });
      logger.info({ port: server.port }, 'payments gRPC service listening');
    }

    // Which version of each read model is live: readers (query side, scheduler) see only that one,
    // following cutovers and rollbacks within about a second (pointer poll) or at once (pub/sub).
    const liveVersions = new LiveVersions(parts.readStore, ALL_PROJECTIONS, {
      pubsub: parts.pubsub,
      logger: logger.child({ part: 'versions' }),
      eventStore: parts.eventStore,
    });
    await liveVersions.start();
    stops.push(async () => liveVersions.stop());
    const projector = new Projector(withPoisonReference(ALL_PROJECTIONS, config.poisonReference), {
      eventStore: parts.eventStore,
      readStore: parts.readStore,
      logger: logger.child({ role: 'projector' }),
      metrics: parts.metrics,
      pubsub: parts.pubsub,
      cache: parts.cache,
      versions: liveVersions,
    });
    const operations = new ProjectionOperations({
      eventStore: parts.eventStore,
      readStore: parts.readStore,
      projections: ALL_PROJECTIONS,
      logger: logger.child({ part: 'rebuild' }),
      pubsub: parts.pubsub,
    });
    stops.push(() => operations.stop());
    if (roles.has('projector')) {
      await projector.start();
      stops.push(() => projector.stop());
    }

    // Every process serves HTTP on SETTLE_HTTP_PORT: the REST and GraphQL APIs with the command and
    // query roles, and always /health/live, /health/ready and /metrics (for the worker roles alone,
    // only those), so an orchestrator can probe any process and Prometheus can scrape its gauges.
    const api = roles.has('command') || roles.has('query');
    // Each part the roles of this process use, as the part monitor last saw it (probed every second).
    const readiness: ReadinessCheck[] = partReadiness(roles, parts.health);
    if (roles.has('projector')) {
      // A flag, not Promise.race with an already-resolved promise: that race always picks the latter.
      let caughtUp = false;
      void projector.whenCaughtUp().then(() => (caughtUp = true));
      readiness.push({
        name: 'projections',
        check: async () => {
          if (!caughtUp) throw new Error('projections are still catching up');
        },
      });
    }
    const https = httpsOptions(config);
    const trustProxy = trustProxyOption(config);
    const httpOptions = {
      logger,
      metrics: parts.metrics,
      bodyLimit: config.bodyLimit,
      readiness,
      corsOrigins: parseCorsOrigins(config.corsOrigins),
      ...(https ? { https } : {}),
      ...(trustProxy !== undefined ? { trustProxy } : {}),
    };
    const app: FastifyInstance = api ? await createHttpApp(httpOptions) : await createOpsApp(httpOptions);
    if (roles.has('command'))
      await app.register(commandPlugin, {
        eventStore: parts.eventStore,
        idempotency: parts.idempotency,
        tokens,
        clients,
        metrics: parts.metrics,
        callbackUrls: createCallbackUrlPolicy({ production: config.production, allowlist: config.callbackAllowlist }),
        gatewayProviders: { sandbox: config.gatewayWebhookSecret },
        rateLimits: {
          perClient: config.rateLimit,
          perIp: config.rateLimitIp,
          loginFailures: config.loginFailureLimit,
        },
        ...(parts.redis ? { redis: parts.redis, redisPrefix: config.redisPrefix } : {}),
        unavailable: commandNeeds(config, parts),
      });
    if (roles.has('query'))
      await app.register(queryPlugin, {
        readStore: liveVersions.readStore,
        eventStore: parts.eventStore,
        projector,
        operations,
        tokens,
        clients,
        pubsub: parts.pubsub,
        cache: parts.cache,
        logger,
        graphiql: config.graphiql ?? !config.production,
        readWaitMs: config.readWaitMs,
        limits: { introspection: config.graphqlIntrospection ?? !config.production },
        ...operatorParts(parts),
      });
    stops.push(() => app.close());
    await listenOn('SETTLE_HTTP_PORT', config.httpPort, () => app.listen({ port: config.httpPort, host: config.host }));
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.httpPort;
    const httpUrl = `${https ? 'https' : 'http'}://127.0.0.1:${port}`;
    if (api)
      logger.info({ url: httpUrl, docs: `${httpUrl}/docs`, graphql: `${httpUrl}/graphql` }, 'HTTP API listening');
    else
      logger.info(
        { url: httpUrl, ready: `${httpUrl}/health/ready`, metrics: `${httpUrl}/metrics` },
        'health and metrics listening',
      );

    const consumers: Consumer[] = [];
    const notifier = createNotifier({
      eventStore: parts.eventStore,
      clients,
      locks: parts.locks,
      logger: logger.child({ role: 'notifier' }),
      metrics: parts.metrics,
      delaysMs: config.notifyDelaysMs,
      maxAttempts: config.notifyMaxAttempts,
      // Connect-time SSRF check (DNS rebinding), same rule as registration; redirects not followed.
      fetch: createSafeFetch({
        forbiddenReason: createAddressPolicy({ allowLoopback: !config.production, allowlist: config.callbackAllowlist })
          .forbiddenReason,
      }),
    });
    if (roles.has('reactor')) {
      const paymentsAddress = config.paymentsUrl || `127.0.0.1:${config.grpcPort}`;
      const grpcCredentials = grpcClientCredentials(grpcTls);
      const payments = createPaymentsClient(paymentsAddress, grpcCredentials ? { credentials: grpcCredentials } : {});
      const dispatcher = createDispatcher({
        eventStore: parts.eventStore,
        payments,
        retry: { maxAttempts: config.maxAttempts, delaysMs: config.retryDelaysMs },
        logger: logger.child({ role: 'dispatcher' }),
        metrics: parts.metrics,
        deadlineMs: config.gatewayTimeoutMs + 2000,
      });
      consumers.push(
        await parts.bus.consume(
          { group: 'dispatcher', streamPrefixes: ['request-'], concurrency: config.reactorConcurrency },
          dispatcher,
        ),
      );
      consumers.push(
        await parts.bus.consume(
          { group: 'notifier', streamPrefixes: ['request-'], concurrency: config.reactorConcurrency },
          notifier.handle,
        ),
      );
      stops.push(async () => {
        await Promise.all(consumers.map((c) => c.stop()));
        payments.close();
      });
    }
    if (roles.has('scheduler')) {
      const scheduler = createScheduler({
        eventStore: parts.eventStore,
        readStore: liveVersions.readStore,
        locks: parts.locks,
        notifier,
        logger: logger.child({ role: 'scheduler' }),
        intervalMs: config.production ? 1000 : 250,
      });
      scheduler.start();
      stops.push(() => scheduler.stop());
    }
    logger.info('Settle is up');
    return { config, httpUrl, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
