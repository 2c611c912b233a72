import { CLIENT_ROLES, DomainError, ERR_CLIENT_EXISTS, ERR_CLIENT_NOT_FOUND } from '@settle/domain';
import type { ApiClient, ClientAdmin, Role } from '@settle/platform';
import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth/plugin.js';
import { HttpProblem } from '../errors.js';

export interface ClientRoutesDeps {
  clients: ClientAdmin;
}

const clientView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    merchantId: { type: 'string' },
    disabled: { type: 'boolean' },
  },
} as const;

const createBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'roles'],
  properties: {
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{2,62}$' },
    name: { type: 'string', minLength: 1, maxLength: 200 },
    roles: {
      type: 'array',
      minItems: 1,
      maxItems: 4,
      uniqueItems: true,
      items: { type: 'string', enum: [...CLIENT_ROLES] },
    },
    merchantId: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' },
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

const view = (c: ApiClient) => ({
  id: c.id,
  name: c.name,
  roles: c.roles,
  ...(c.merchantId ? { merchantId: c.merchantId } : {}),
  disabled: c.disabled,
});
const notFound = (id: string) =>
  new HttpProblem(404, ERR_CLIENT_NOT_FOUND, 'Not found', `client ${id} was not found`, 'id');

/**
 * API client administration (role `admin`). Secrets are answered once, at creation, and only
 * their hash (client secret) or ciphertext (webhook secret) is stored.
 */
export async function clientRoutes(app: FastifyInstance, deps: ClientRoutesDeps): Promise<void> {
  const auth = { onRequest: [app.authenticate] };

  app.post(
    '/v1/clients',
    {
      ...auth,
      schema: {
        tags: ['clients'],
        summary: 'Create an API client (admin); the response holds its secrets, shown this once',
        security: [{ bearer: [] }],
        body: createBody,
        response: {
          201: {
            type: 'object',
            properties: {
              ...clientView.properties,
              client_secret: { type: 'string' },
              webhook_secret: { type: 'string' },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const principal = requireRole(request, 'admin');
      const body = request.body as { id?: string; name: string; roles: Role[]; merchantId?: string };
      if (body.merchantId !== undefined && !body.roles.includes('merchant'))
        throw new HttpProblem(
          400,
          'SETTLE_ERR_HTTP_VALIDATION',
          'Invalid request',
          'merchantId is only for clients with the merchant role',
          'merchantId',
        );
      try {
        const created = await deps.clients.create(body, principal.clientId);
        reply.header('cache-control', 'no-store').header('location', `/v1/clients/${created.client.id}`);
        return reply.code(201).send({
          ...view(created.client),
          client_secret: created.clientSecret,
          ...(created.webhookSecret ? { webhook_secret: created.webhookSecret } : {}),
        });
      } catch (error) {
        if (error instanceof DomainError && error.code === ERR_CLIENT_EXISTS)
          throw new HttpProblem(409, ERR_CLIENT_EXISTS, 'Conflict', `client ${body.id} already exists`, 'id');
        throw error;
      }
    },
  );

  app.get(
    '/v1/clients',
    {
      ...auth,
      schema: {
        tags: ['clients'],
        summary: 'List API clients (admin), without secrets',
        security: [{ bearer: [] }],
        response: { 200: { type: 'object', properties: { clients: { type: 'array', items: clientView } } } },
      },
    },
    async (request) => {
      requireRole(request, 'admin');
      return { clients: (await deps.clients.list()).map(view) };
    },
  );

  app.post(
    '/v1/clients/:id/disable',
    {
      ...auth,
      schema: {
        tags: ['clients'],
        summary: 'Disable an API client (admin): its tokens stop working at once',
        security: [{ bearer: [] }],
        params: idParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { reason: { type: 'string', maxLength: 500 } },
        },
        response: { 200: clientView },
      },
    },
    async (request) => {
      const principal = requireRole(request, 'admin');
      const { id } = request.params as { id: string };
      const reason = (request.body as { reason?: string } | null)?.reason ?? `disabled by ${principal.clientId}`;
      const client = await deps.clients.disable(id, reason, principal.clientId);
      if (!client) throw notFound(id);
      return view(client);
    },
  );
}
