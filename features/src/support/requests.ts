import assert from 'node:assert/strict';
import type { HttpAnswer, RequestNode, RequestView } from './http.js';
import { eventually, GiveUp } from './wait.js';
import type { RequestSnapshot, SettleWorld, TrackedRequest } from './world.js';

export const TERMINAL = new Set(['SETTLED', 'DECLINED', 'FAILED', 'CANCELLED', 'ARCHIVED']);
export const TERMINAL_EVENTS = new Set(['PaymentSettled', 'PaymentDeclined', 'PaymentFailed', 'RequestCancelled']);

/** How long GraphQL (a projection) may trail the event store that REST reads. */
export const PROJECTION_LAG_MS = 3_000;

export function describe(answer: HttpAnswer): string {
  return `${answer.status} ${answer.contentType} ${answer.text.slice(0, 500)}`;
}

/** POST /v1/requests as `as`; the answer is kept as the scenario's last answer. */
export async function register(
  world: SettleWorld,
  as: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<HttpAnswer<{ id?: string; authId?: string; status?: string; position?: string }>> {
  const answer = await world.api.http<{ id?: string; authId?: string; status?: string; position?: string }>(
    'POST',
    '/v1/requests',
    { as, body, headers },
  );
  world.last = answer;
  world.answers.push(answer);
  return answer;
}

/** Registers a request that must be accepted, and makes it "the request" of the scenario. */
export async function registerAccepted(
  world: SettleWorld,
  as: string,
  amount: number,
  currency = 'EUR',
): Promise<TrackedRequest> {
  const reference = world.unique(`ref-${amount}`);
  const answer = await register(world, as, {
    amount,
    currency,
    reference,
    description: `features: ${amount} ${currency}`,
  });
  assert.equal(answer.status, 202, `registering ${amount} ${currency} was not accepted: ${describe(answer)}`);
  assert.ok(answer.json.id, `the 202 carries no id: ${answer.text}`);
  const tracked: TrackedRequest = {
    id: answer.json.id,
    amount,
    currency,
    reference,
    owner: as,
    acceptedAt: Date.now(),
  };
  world.request = tracked;
  return tracked;
}

export async function view(
  world: SettleWorld,
  id: string,
  as: string,
): Promise<{ answer: HttpAnswer<RequestView>; view: RequestView }> {
  const answer = await world.api.http<RequestView>('GET', `/v1/requests/${id}`, { as });
  assert.equal(answer.status, 200, `GET /v1/requests/${id} as ${as}: ${describe(answer)}`);
  return { answer, view: answer.json };
}

/**
 * Polls REST (which reads the event store) until the request has `status`; fails at once when
 * it reaches another outcome, and when `deadline` (epoch ms) passes.
 */
export async function waitForStatus(
  world: SettleWorld,
  request: TrackedRequest,
  status: string,
  deadline: number,
  as = request.owner,
): Promise<RequestView> {
  const timeoutMs = Math.max(0, deadline - Date.now());
  return eventually(
    `request ${request.id} (${request.amount} ${request.currency}) to reach ${status}`,
    timeoutMs,
    async () => {
      const { view: current } = await view(world, request.id, as);
      const seen = `it is ${current.status} after ${current.attempts} attempt(s)${current.lastError ? `, last error ${JSON.stringify(current.lastError)}` : ''}`;
      if (current.status !== status && TERMINAL.has(current.status))
        throw new GiveUp(
          `request ${request.id} (${request.amount} ${request.currency}) was expected to reach ${status}, but ${seen}`,
        );
      assert.equal(current.status, status, seen);
      return current;
    },
  );
}

/** GraphQL `request(id)` once the projection shows `status` (it may trail the event store a little). */
export async function nodeWithStatus(world: SettleWorld, id: string, as: string, status: string): Promise<RequestNode> {
  return eventually(`GraphQL to show request ${id} ${status}`, PROJECTION_LAG_MS, async () => {
    const node = await world.api.requestNode(as, id);
    assert.ok(node, `GraphQL request(id) answered null for ${as}`);
    assert.equal(node.status, status);
    return node;
  });
}

/** REST's revision (ETag) and GraphQL's timeline once both show `status`. */
export async function snapshot(world: SettleWorld, request: TrackedRequest, status: string): Promise<RequestSnapshot> {
  const { answer, view: current } = await view(world, request.id, request.owner);
  assert.equal(current.status, status);
  const node = await eventually(`GraphQL to catch up with request ${request.id}`, PROJECTION_LAG_MS, async () => {
    const n = await world.api.requestNode(request.owner, request.id);
    assert.ok(n);
    assert.equal(n.version, current.version, `GraphQL is at version ${n.version}, REST at ${current.version}`);
    return n;
  });
  return { status: current.status, version: current.version, etag: answer.headers.get('etag'), events: node.events };
}

export const count = (node: RequestNode, type: string): number => node.events.filter((e) => e.type === type).length;
