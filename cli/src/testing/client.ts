import { createServer, type IncomingMessage, type Server } from 'node:http';
import { sleep } from './processes.js';

/** A small REST client for Settle's command API, as a merchant's backend would use it. */
export interface SettleClient {
  token(): Promise<string>;
  /** POST /v1/requests; never throws on an HTTP status, returns it with how long it took. */
  register(
    body: { amount: number; currency?: string; reference: string },
    idempotencyKey?: string,
  ): Promise<{ status: number; id?: string; ms: number; error?: string }>;
  get(id: string): Promise<{ status: number; body?: RequestView }>;
}

export interface RequestView {
  id: string;
  status: string;
  attempts: number;
  amount: number;
}

export const TERMINAL = new Set(['SETTLED', 'DECLINED', 'FAILED', 'CANCELLED']);

export function settleClient(baseUrl: string, timeoutMs = 10_000): SettleClient {
  let token: { value: string; until: number } | undefined;
  let pendingToken: Promise<string> | undefined;
  // One token request at a time: the token endpoint throttles bursts.
  function getToken(): Promise<string> {
    if (token && token.until > Date.now()) return Promise.resolve(token.value);
    pendingToken ??= fetchToken().finally(() => (pendingToken = undefined));
    return pendingToken;
  }
  async function fetchToken(): Promise<string> {
    const res = await fetch(`${baseUrl}/v1/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'client_credentials',
        client_id: 'demo-merchant',
        client_secret: 'demo-secret',
      }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`token: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { access_token: string; expires_in: number };
    token = { value: body.access_token, until: Date.now() + Math.max(10, body.expires_in - 30) * 1000 };
    return token.value;
  }
  return {
    token: getToken,
    async register(body, idempotencyKey) {
      const started = Date.now();
      try {
        const res = await fetch(`${baseUrl}/v1/requests`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${await getToken()}`,
            ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
          },
          body: JSON.stringify({ currency: 'EUR', ...body }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        const ms = Date.now() - started;
        if (res.status === 202) return { status: 202, id: (JSON.parse(text) as { id: string }).id, ms };
        return { status: res.status, ms, error: text.slice(0, 500) };
      } catch (error) {
        return { status: 0, ms: Date.now() - started, error: (error as Error).message };
      }
    },
    async get(id) {
      const res = await fetch(`${baseUrl}/v1/requests/${id}`, {
        headers: { authorization: `Bearer ${await getToken()}` },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!res.ok) return { status: res.status };
      return { status: res.status, body: (await res.json()) as RequestView };
    },
  };
}

/** Runs `fn` over `items` with at most `limit` at once, keeping the order of results. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i], i);
      }
    }),
  );
  return results;
}

/**
 * Polls GET /v1/requests/:id until every id is in a terminal state or `timeoutMs` passes;
 * returns the last view of each (the event-sourced state, not a read model).
 */
export async function waitAllTerminal(
  client: SettleClient,
  ids: readonly string[],
  timeoutMs: number,
  onProgress?: (pending: number) => void,
): Promise<{ views: Map<string, RequestView>; pending: string[] }> {
  const views = new Map<string, RequestView>();
  let pending = [...ids];
  const deadline = Date.now() + timeoutMs;
  while (pending.length > 0 && Date.now() < deadline) {
    await mapLimit(pending, 16, async (id) => {
      try {
        const { body } = await client.get(id);
        if (body) views.set(id, body);
      } catch {
        // the API may be briefly unavailable during an outage test: poll again
      }
    });
    pending = pending.filter((id) => !TERMINAL.has(views.get(id)?.status ?? ''));
    onProgress?.(pending.length);
    if (pending.length > 0) await sleep(1000);
  }
  return { views, pending };
}

export interface GatewayCounter {
  url: string;
  /** Raw POST /v1/authorizations per idempotency key that went through the proxy. */
  postsByKey: Map<string, number>;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A counting proxy in front of the gateway sandbox: the sandbox dedupes by idempotency key,
 * so its stats cannot see one attempt sent twice; this counts every raw authorisation call.
 */
export async function gatewayCounter(targetUrl: string): Promise<GatewayCounter> {
  const postsByKey = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      if (req.method === 'POST' && req.url?.startsWith('/v1/authorizations')) {
        try {
          const key = (JSON.parse(body.toString()) as { idempotencyKey?: string }).idempotencyKey ?? '?';
          postsByKey.set(key, (postsByKey.get(key) ?? 0) + 1);
        } catch {
          // malformed: the sandbox answers 400
        }
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k)) headers[k] = v;
      try {
        const upstream = await fetch(`${targetUrl}${req.url ?? '/'}`, {
          method: req.method ?? 'GET',
          headers,
          ...(body.length > 0 ? { body } : {}),
        });
        const out = Buffer.from(await upstream.arrayBuffer());
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
        res.end(out);
      } catch (error) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end((error as Error).message);
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    postsByKey,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface SandboxStats {
  authorizations: number;
  byRequest: Record<string, number>;
}

export async function sandboxStats(sandboxUrl: string): Promise<SandboxStats> {
  const res = await fetch(`${sandboxUrl}/v1/stats`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`sandbox stats: HTTP ${res.status}`);
  return (await res.json()) as SandboxStats;
}

/** What a request's amount should end in, by the sandbox's rules (payments/src/sandboxRules.ts). */
export function expectedOutcome(amount: number, maxAttempts = 5): { status: string; attempts: number } {
  switch (String(amount).slice(-3)) {
    case '402':
      return { status: 'DECLINED', attempts: 1 };
    case '503':
      return { status: 'SETTLED', attempts: 3 };
    case '500':
      return { status: 'FAILED', attempts: maxAttempts };
    default:
      return { status: 'SETTLED', attempts: 1 };
  }
}
