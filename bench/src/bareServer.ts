/**
 * The limit for B2 and B3, run as its own process like Settle: a bare fastify route with the very
 * JSON schemas of POST /v1/requests that answers 202 without storing anything, and a /graphql
 * route answering a fixed document. Usage: node bareServer.js PORT
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { acceptedResponse, registerBody } from '../../command-side/dist/requests/schemas.js';

const port = Number(process.argv[2] ?? 0);
const app = Fastify({
  logger: false,
  // The same validator settings as Settle's HTTP app.
  ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, useDefaults: true } },
});

let position = 0;
app.post(
  '/v1/requests',
  { schema: { body: registerBody, response: { 202: acceptedResponse } } },
  async (_request, reply) => {
    const id = randomUUID();
    position++;
    return reply
      .code(202)
      .header('location', `/v1/requests/${id}`)
      .send({ id, authId: `auth_${id.replace(/-/g, '')}`, status: 'REGISTERED', position: String(position) });
  },
);

app.post('/graphql', async (request) => {
  const id = (request.body as { variables?: { id?: string } } | undefined)?.variables?.id ?? 'unknown';
  return { data: { request: { id, status: 'REGISTERED' } } };
});

app.get('/health/ready', async () => ({ status: 'ok' }));

await app.listen({ port, host: '127.0.0.1' });
const shutdown = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
