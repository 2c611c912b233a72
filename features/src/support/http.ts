import type { SettleProcess } from './app.js';

export const DEMO_SECRET = 'demo-secret';

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  contentType: string;
  text: string;
  /** The parsed JSON body, or undefined when the body is not JSON. */
  json: T;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code?: string;
  field?: string;
  errors?: { field: string; message: string }[];
}

export interface RequestView {
  id: string;
  authId: string;
  merchantId: string;
  amount: number;
  currency: string;
  reference: string;
  status: string;
  attempts: number;
  nextAttemptAt?: string;
  lastError?: { code: string; message: string };
  version: number;
}

export interface GraphqlAnswer<T> {
  status: number;
  data?: T;
  errors?: { message: string; extensions?: { code?: string; field?: string } }[];
}

export interface TimelineEvent {
  type: string;
  position: string;
  occurredAt: string;
}

export interface RequestNode {
  id: string;
  merchantId: string;
  reference: string;
  status: string;
  attempts: number;
  version: number;
  events: TimelineEvent[];
}

/**
 * Talks to one Settle process the way a merchant's backend does: OAuth2 client credentials,
 * then REST and GraphQL with the bearer token. Tokens are cached per client id.
 */
export class SettleClient {
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(private readonly app: SettleProcess) {}

  forgetTokens(): void {
    this.tokens.clear();
  }

  token(clientId: string): Promise<string> {
    let token = this.tokens.get(clientId);
    if (!token) {
      token = this.fetchToken(clientId);
      token.catch(() => this.tokens.delete(clientId));
      this.tokens.set(clientId, token);
    }
    return token;
  }

  private async fetchToken(clientId: string): Promise<string> {
    const res = await this.http('POST', '/v1/auth/token', {
      body: { grant_type: 'client_credentials', client_id: clientId, client_secret: DEMO_SECRET },
    });
    const token = (res.json as { access_token?: string } | undefined)?.access_token;
    if (res.status !== 200 || !token) throw new Error(`no token for ${clientId}: ${res.status} ${res.text}`);
    return token;
  }

  /** One HTTP exchange. `body` is sent as JSON unless `rawBody` is given; `as` adds that client's bearer token. */
  async http<T = unknown>(
    method: string,
    path: string,
    opts: { as?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpAnswer<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.as) headers.authorization = `Bearer ${await this.token(opts.as)}`;
    let body: string | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
      headers['content-type'] = 'application/json';
    const res = await fetch(`${this.app.httpUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return {
      status: res.status,
      headers: res.headers,
      contentType: res.headers.get('content-type') ?? '',
      text,
      json: json as T,
    };
  }

  async graphql<T>(as: string, query: string, variables: Record<string, unknown> = {}): Promise<GraphqlAnswer<T>> {
    const res = await this.http<{ data?: T; errors?: GraphqlAnswer<T>['errors'] }>('POST', '/graphql', {
      as,
      body: { query, variables },
    });
    if (res.json === undefined) throw new Error(`GraphQL answered ${res.status} without JSON: ${res.text}`);
    return { status: res.status, ...res.json };
  }

  /** GraphQL `request(id)` with its timeline; fails the step on GraphQL errors. */
  async requestNode(as: string, id: string): Promise<RequestNode | null> {
    const answer = await this.graphql<{ request: RequestNode | null }>(
      as,
      `query ($id: ID!) { request(id: $id) { id merchantId reference status attempts version events { type position occurredAt } } }`,
      { id },
    );
    if (answer.errors?.length) throw new Error(`GraphQL request(id) failed: ${JSON.stringify(answer.errors)}`);
    return answer.data?.request ?? null;
  }

  /** GraphQL `requests`, newest first: the first `first` nodes and the total count. */
  async requestList(
    as: string,
    filter: Record<string, unknown> = {},
    first = 100,
  ): Promise<{ totalCount: number; nodes: { id: string; reference: string; status: string }[] }> {
    const answer = await this.graphql<{
      requests: { totalCount: number; nodes: { id: string; reference: string; status: string }[] };
    }>(
      as,
      `query ($filter: RequestFilter, $first: Int) { requests(filter: $filter, first: $first) { totalCount nodes { id reference status } } }`,
      { filter, first },
    );
    if (answer.errors?.length || !answer.data)
      throw new Error(`GraphQL requests failed: ${JSON.stringify(answer.errors)}`);
    return answer.data.requests;
  }

  /** Sum of a Prometheus counter from `/metrics` over the series whose labels include `labels` (0 before any); fails when it is not exported. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const res = await this.http('GET', '/metrics');
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
    if (!res.text.includes(`# TYPE ${name} `)) throw new Error(`/metrics does not export ${name}`);
    let sum = 0;
    for (const line of res.text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m || m[1] !== name) continue;
      const seriesLabels = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => seriesLabels.includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  }

  async sandboxStats(): Promise<{ authorizations: number; byRequest: Record<string, number> }> {
    const res = await fetch(`${this.app.sandboxUrl}/v1/stats`, { signal: AbortSignal.timeout(5_000) });
    if (res.status !== 200) throw new Error(`sandbox /v1/stats answered ${res.status}`);
    return (await res.json()) as { authorizations: number; byRequest: Record<string, number> };
  }
}
