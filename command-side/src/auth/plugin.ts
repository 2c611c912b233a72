import formbody from '@fastify/formbody';
import {
  hasRole,
  TokenError,
  type ClientRegistry,
  type Principal,
  type Role,
  type TokenService,
} from '@settle/platform';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import {
  ERR_FORBIDDEN,
  ERR_INVALID_CLIENT,
  ERR_INVALID_GRANT,
  ERR_RATE_LIMITED,
  ERR_UNAUTHENTICATED,
  HttpProblem,
} from '../errors.js';
import { LoginThrottle } from './loginThrottle.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyInstance {
    authenticate(request: FastifyRequest): Promise<void>;
  }
}

export interface AuthDeps {
  tokens: TokenService;
  clients: ClientRegistry;
  /** Failed token requests per client_id and per IP; default 10 a minute, in memory. */
  loginThrottle?: LoginThrottle;
}

/** 429 problem+json; the caller has set Retry-After. */
export const tooManyRequests = (detail: string) => new HttpProblem(429, ERR_RATE_LIMITED, 'Too many requests', detail);

const tokenBody = {
  type: 'object',
  additionalProperties: false,
  required: ['grant_type'],
  properties: {
    grant_type: { type: 'string', enum: ['client_credentials', 'refresh_token'] },
    client_id: { type: 'string', minLength: 1, maxLength: 128 },
    client_secret: { type: 'string', minLength: 1, maxLength: 512 },
    refresh_token: { type: 'string', minLength: 1, maxLength: 512 },
    scope: { type: 'string', maxLength: 512 },
  },
} as const;

const tokenResponse = {
  type: 'object',
  properties: {
    access_token: { type: 'string' },
    refresh_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer' },
  },
} as const;

const unauthenticated = (detail: string) =>
  new HttpProblem(401, ERR_UNAUTHENTICATED, 'Unauthenticated', detail, 'Authorization');

/** Reads and verifies the bearer token; every protected route runs it first. */
export function requirePrincipal(request: FastifyRequest): Principal {
  if (!request.principal) throw unauthenticated('a bearer token is required');
  return request.principal;
}

export function requireRole(request: FastifyRequest, ...roles: Role[]): Principal {
  const principal = requirePrincipal(request);
  if (!hasRole(principal, ...roles))
    throw new HttpProblem(
      403,
      ERR_FORBIDDEN,
      'Forbidden',
      `this operation needs one of the roles: ${roles.join(', ')}`,
    );
  return principal;
}

async function authPlugin(app: FastifyInstance, deps: AuthDeps) {
  await app.register(formbody, { bodyLimit: 16_384 });
  const throttle = deps.loginThrottle ?? new LoginThrottle({ maxFailures: 10 });

  app.decorate('authenticate', async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    if (!header) throw unauthenticated('a bearer token is required');
    const match = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(header);
    if (!match) throw unauthenticated('the Authorization header must be "Bearer <token>"');
    try {
      request.principal = await deps.tokens.verify(match[1]!);
    } catch (error) {
      throw unauthenticated(
        error instanceof TokenError
          ? 'the access token is invalid or expired'
          : 'the access token could not be verified',
      );
    }
    const client = await deps.clients.get(request.principal.clientId);
    if (!client || client.disabled) throw unauthenticated('the client is disabled');
  });

  app.post(
    '/v1/auth/token',
    {
      schema: {
        tags: ['auth'],
        summary: 'OAuth2 token endpoint (client credentials and refresh token grants)',
        body: tokenBody,
        response: { 200: tokenResponse },
      },
    },
    async (request, reply) => {
      const body = request.body as {
        grant_type: string;
        client_id?: string;
        client_secret?: string;
        refresh_token?: string;
      };
      reply.header('cache-control', 'no-store');
      // Every attempt takes a slot per IP (and per client_id) before any secret is checked; a success gives them back.
      const keys = [
        `ip:${request.ip}`,
        ...(body.grant_type === 'client_credentials' && body.client_id ? [`client:${body.client_id}`] : []),
      ];
      const attempt = await throttle.begin(keys);
      if (attempt.retryAfterS !== undefined) {
        request.log.warn(
          { clientId: body.client_id, ip: request.ip },
          'token requests throttled after repeated failures',
        );
        reply.header('retry-after', String(attempt.retryAfterS));
        throw tooManyRequests(`too many failed token requests; retry in ${attempt.retryAfterS} s`);
      }
      const pair = await grant(body);
      await attempt.release();
      return pair;
    },
  );

  async function grant(body: {
    grant_type: string;
    client_id?: string;
    client_secret?: string;
    refresh_token?: string;
  }) {
    if (body.grant_type === 'client_credentials') {
      if (!body.client_id)
        throw new HttpProblem(400, ERR_INVALID_CLIENT, 'Invalid request', 'client_id is required', 'client_id', {
          error: 'invalid_request',
        });
      if (!body.client_secret)
        throw new HttpProblem(
          400,
          ERR_INVALID_CLIENT,
          'Invalid request',
          'client_secret is required',
          'client_secret',
          { error: 'invalid_request' },
        );
      const client = await deps.clients.authenticate(body.client_id, body.client_secret);
      if (!client)
        throw new HttpProblem(
          401,
          ERR_INVALID_CLIENT,
          'Invalid client',
          'unknown client or wrong secret',
          'client_secret',
          { error: 'invalid_client' },
        );
      return deps.tokens.issue(client);
    }
    if (!body.refresh_token)
      throw new HttpProblem(400, ERR_INVALID_GRANT, 'Invalid request', 'refresh_token is required', 'refresh_token', {
        error: 'invalid_request',
      });
    try {
      const { clientId, family } = await deps.tokens.consumeRefresh(body.refresh_token);
      const client = await deps.clients.get(clientId);
      if (!client || client.disabled) {
        await deps.tokens.revokeFamily(family);
        throw new TokenError('invalid_grant', 'the client is disabled');
      }
      return await deps.tokens.issue(client, family);
    } catch (error) {
      if (error instanceof TokenError)
        throw new HttpProblem(400, ERR_INVALID_GRANT, 'Invalid grant', error.message, 'refresh_token', {
          error: 'invalid_grant',
        });
      throw error;
    }
  }

  app.get(
    '/.well-known/jwks.json',
    { schema: { tags: ['auth'], summary: 'Public keys that verify access tokens' } },
    async () => deps.tokens.jwks(),
  );
}

export default fp(authPlugin, { name: 'settle-auth' });
