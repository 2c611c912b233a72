import { clientsEnv, type ClientsCommandEnv } from './clients.js';
import { OperatorApiError } from './projections.js';

/** A GraphQL error as the operator API reports it. */
export interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string; field?: string };
}

export class OperatorGraphQLError extends OperatorApiError {
  constructor(
    readonly errors: GraphQLErrorBody[],
    what: string,
  ) {
    super(`${what}: ${errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('; ')}`);
  }
  get code(): string | undefined {
    return this.errors[0]?.extensions?.code;
  }
}

async function postJson(env: ClientsCommandEnv, path: string, body: unknown, token?: string) {
  let res: Response;
  try {
    res = await fetch(`${env.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      // retryParked/skipParked wait for the projector (10 s by default): leave room for that.
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw new OperatorApiError(`cannot reach Settle at ${env.url}: ${(error as Error).message} (set SETTLE_URL)`);
  }
  const text = await res.text();
  try {
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  } catch {
    throw new OperatorApiError(`POST ${path}: ${res.status}: not JSON: ${text.slice(0, 200)}`);
  }
}

/** One GraphQL operation as the operator SETTLE_CLIENT_ID (a fresh token each time: CLI runs are short). */
export async function operatorGraphQL<T>(
  query: string,
  variables: Record<string, unknown> = {},
  env: ClientsCommandEnv = clientsEnv(),
): Promise<T> {
  const auth = await postJson(env, '/v1/auth/token', {
    grant_type: 'client_credentials',
    client_id: env.clientId,
    client_secret: env.clientSecret,
  });
  if (auth.status !== 200 || typeof auth.json.access_token !== 'string')
    throw new OperatorApiError(
      `token for ${env.clientId}: ${auth.status} ${String(auth.json.title ?? '')}: ${String(auth.json.detail ?? '')} (set SETTLE_CLIENT_ID / SETTLE_CLIENT_SECRET to an operator)`,
    );
  const res = await postJson(env, '/graphql', { query, variables }, auth.json.access_token);
  const errors = res.json.errors as GraphQLErrorBody[] | undefined;
  const what = /\{\s*(\w+)/.exec(query)?.[1] ?? 'graphql';
  if (errors?.length) throw new OperatorGraphQLError(errors, what);
  if (res.status !== 200 || !res.json.data) throw new OperatorApiError(`${what}: HTTP ${res.status}: no data`);
  return res.json.data as T;
}
