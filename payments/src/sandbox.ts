import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createCallbackSender, type SandboxEvent } from './sandboxCallbacks.js';
import { SandboxJournal } from './sandboxJournal.js';
import { sandboxRuleFor } from './sandboxRules.js';

export const DEFAULT_SANDBOX_PORT = 4010;
/** Development secret only; production never runs the sandbox. */
export const SANDBOX_DEV_WEBHOOK_SECRET = 'whsec_c2V0dGxlLXNhbmRib3gtY2FsbGJhY2stc2VjcmV0LTAx';
export const DEFAULT_SANDBOX_CALLBACK_URL = 'http://127.0.0.1:3000/v1/callbacks/sandbox';
/** About a minute in all, so Settle may restart while a capture is pending. */
export const DEFAULT_CALLBACK_RETRY_DELAYS_MS: readonly number[] = [500, 1_000, 2_000, 4_000, 8_000, 15_000, 30_000];

export interface SandboxOptions {
  /** Where `payment.captured` callbacks go. */
  callbackUrl?: string;
  /** `whsec_…` base64 secret that signs callbacks. */
  webhookSecret?: string;
  /** Delay between authorising a payment and reporting its capture. */
  captureDelayMs?: number;
  /** How long a `…408` amount waits before answering; longer than the client timeout. */
  slowMs?: number;
  callbackRetryDelaysMs?: readonly number[];
  callbackTimeoutMs?: number;
  logger?: Logger;
  /**
   * A file where the sandbox keeps its decisions and the callbacks it owes, so a restart
   * (even `kill -9`) forgets nothing, like a real gateway. Unset: memory only.
   */
  stateFile?: string;
  now?: () => Date;
  newId?: (prefix: 'pay' | 'evt') => string;
}

export interface AuthorizationBody {
  idempotencyKey: string;
  requestId: string;
  amount: number;
  currency: string;
  merchantId: string;
  reference: string;
}

export interface SandboxStats {
  /** Distinct idempotency keys that reached a decision. */
  authorizations: number;
  /** Distinct idempotency keys per requestId. */
  byRequest: Record<string, number>;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

const text = { type: 'string', minLength: 1, maxLength: 255 } as const;
const authorizationSchema = {
  type: 'object',
  required: ['idempotencyKey', 'requestId', 'amount', 'currency', 'merchantId', 'reference'],
  properties: {
    idempotencyKey: text,
    requestId: text,
    amount: { type: 'integer', minimum: 1, maximum: 1_000_000_000_000 },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
    merchantId: text,
    reference: text,
  },
} as const;

const randomId = (prefix: string): string => `${prefix}_${randomBytes(12).toString('hex')}`;

/**
 * The sandbox payment gateway: deterministic by amount (see sandboxRuleFor), idempotent by
 * idempotency key, state in memory. Returns the app without listening; `close()` also
 * cancels pending callbacks and releases slow answers so shutdown is prompt.
 */
export function buildSandbox(opts: SandboxOptions = {}): FastifyInstance {
  const now = opts.now ?? (() => new Date());
  const newId = opts.newId ?? randomId;
  const slowMs = opts.slowMs ?? 3_000;
  const captureDelayMs = opts.captureDelayMs ?? 300;
  // Typed as fastify's base logger so the app stays a plain FastifyInstance for callers.
  const app: FastifyInstance = Fastify({ loggerInstance: opts.logger as FastifyBaseLogger | undefined });
  const callbacks = createCallbackSender({
    url: opts.callbackUrl ?? DEFAULT_SANDBOX_CALLBACK_URL,
    webhookSecret: opts.webhookSecret ?? SANDBOX_DEV_WEBHOOK_SECRET,
    retryDelaysMs: opts.callbackRetryDelaysMs ?? DEFAULT_CALLBACK_RETRY_DELAYS_MS,
    timeoutMs: opts.callbackTimeoutMs ?? 5_000,
    logger: app.log as Logger,
    now,
  });

  // Keyed by idempotency key; the answer is a promise so concurrent repeats share one decision.
  const answers = new Map<string, { fingerprint: string; answer: Promise<Answer> }>();
  const keysPerRequest = new Map<string, number>();
  const slow = new Map<NodeJS.Timeout, () => void>();
  const journal = new SandboxJournal(opts.stateFile);
  const settled = (id: string): void => journal.recordSettled(id);
  for (const a of journal.answers) {
    answers.set(a.key, { fingerprint: a.fingerprint, answer: Promise.resolve({ status: a.status, body: a.body }) });
    keysPerRequest.set(a.requestId, (keysPerRequest.get(a.requestId) ?? 0) + 1);
  }
  // Callbacks a previous run owed and never delivered: send them now.
  for (const event of journal.owed.values()) callbacks.send(captureDelayMs, () => event, settled);

  function authorize(body: AuthorizationBody, capture: boolean, fingerprint: string): Answer {
    const paymentId = newId('pay');
    const answer: Answer = { status: 201, body: { id: paymentId, status: 'authorized' } };
    let event: SandboxEvent | undefined;
    if (capture)
      event = {
        type: 'payment.captured',
        id: newId('evt'),
        data: {
          paymentId,
          requestId: body.requestId,
          amount: body.amount,
          currency: body.currency,
          capturedAt: new Date(now().getTime() + captureDelayMs).toISOString(),
        },
      };
    // Written before anything is sent: the decision and the callback it owes survive a crash together.
    journal.recordAnswer({ key: body.idempotencyKey, fingerprint, requestId: body.requestId, ...answer }, event);
    if (event) {
      const owed = event;
      callbacks.send(captureDelayMs, () => owed, settled);
    }
    return answer;
  }

  function refuse(body: AuthorizationBody, fingerprint: string, answer: Answer): Promise<Answer> {
    journal.recordAnswer({ key: body.idempotencyKey, fingerprint, requestId: body.requestId, ...answer });
    return Promise.resolve(answer);
  }

  function decide(body: AuthorizationBody, fingerprint: string): Promise<Answer> {
    const attempt = (keysPerRequest.get(body.requestId) ?? 0) + 1;
    keysPerRequest.set(body.requestId, attempt);
    switch (sandboxRuleFor(body.amount, attempt)) {
      case 'decline':
        return refuse(body, fingerprint, { status: 402, body: { status: 'declined', reason: 'insufficient_funds' } });
      case 'unavailable':
        return refuse(body, fingerprint, { status: 503, body: { status: 'error', reason: 'service_unavailable' } });
      case 'fail':
        return refuse(body, fingerprint, { status: 500, body: { status: 'error', reason: 'internal_error' } });
      case 'slow':
        // Authorised but answered late, like a response lost to a timeout: no capture follows,
        // so a request the caller gave up on never settles behind its back.
        return new Promise((resolve) => {
          const release = (): void => {
            clearTimeout(timer);
            slow.delete(timer);
            resolve(authorize(body, false, fingerprint));
          };
          const timer = setTimeout(release, slowMs);
          slow.set(timer, release);
        });
      case 'authorize':
        return Promise.resolve(authorize(body, true, fingerprint));
    }
  }

  app.post<{ Body: AuthorizationBody }>(
    '/v1/authorizations',
    { schema: { body: authorizationSchema } },
    async (req, reply) => {
      const body = req.body;
      const fingerprint = JSON.stringify([body.requestId, body.amount, body.currency, body.merchantId, body.reference]);
      let stored = answers.get(body.idempotencyKey);
      if (stored && stored.fingerprint !== fingerprint) {
        return reply.code(422).send({ status: 'error', reason: 'idempotency_key_reused' });
      }
      if (!stored) {
        stored = { fingerprint, answer: decide(body, fingerprint) };
        answers.set(body.idempotencyKey, stored);
      }
      const answer = await stored.answer;
      return reply.code(answer.status).send(answer.body);
    },
  );

  app.get('/v1/stats', async (): Promise<SandboxStats> => ({
    authorizations: answers.size,
    byRequest: Object.fromEntries(keysPerRequest),
  }));

  // preClose runs before the server waits for in-flight requests: release slow answers
  // now, or closing would wait for them.
  app.addHook('preClose', async () => {
    for (const release of [...slow.values()]) release();
  });
  app.addHook('onClose', async () => {
    await callbacks.close();
  });
  return app;
}
