import { randomBytes } from 'node:crypto';
import { setWorldConstructor, World, type IWorldOptions } from '@cucumber/cucumber';
import type { SettleProcess } from './app.js';
import { SettleClient, type HttpAnswer, type RequestNode } from './http.js';
import type { UpdateSubscription } from './subscriptions.js';

export interface TrackedRequest {
  id: string;
  amount: number;
  currency: string;
  reference: string;
  /** The merchant (client id) that registered it. */
  owner: string;
  /** Date.now() when the 202 arrived. */
  acceptedAt: number;
}

/** What a request looked like at some moment, to show later that nothing changed. */
export interface RequestSnapshot {
  status: string;
  version: number;
  etag: string | null;
  events: RequestNode['events'];
}

const RUN = randomBytes(3).toString('hex');
let sequence = 0;

/** State of one scenario. `app` is the shared Settle process unless the scenario started its own. */
export class SettleWorld extends World {
  app!: SettleProcess;
  api!: SettleClient;
  /** The client id the scenario acts as. */
  me = 'demo-merchant';
  /** Processes this scenario started; stopped after it. */
  readonly dedicated: SettleProcess[] = [];
  readonly subscriptions = new Map<string, UpdateSubscription>();
  /** "the request" of the scenario's steps. */
  request?: TrackedRequest;
  readonly batch: TrackedRequest[] = [];
  /** The last answer a Then step will judge. */
  last?: HttpAnswer;
  readonly answers: HttpAnswer[] = [];
  snapshot?: RequestSnapshot;
  /** Counter values read before the scenario's action. */
  readonly counters = new Map<string, number>();
  /** The Idempotency-Key and body of the scenario's first registration. */
  idempotent?: { key: string; body: Record<string, unknown> };
  /** The last gRPC health check: its status, or the error. */
  health?: { status?: string; error?: { code: number; message: string } };
  /** When the request's next authorisation attempt was due (epoch ms), as Settle reported it. */
  retryDueAt?: number;

  constructor(options: IWorldOptions) {
    super(options);
  }

  /** A reference (and idempotency key) no other scenario or run uses. */
  unique(prefix: string): string {
    sequence += 1;
    return `${prefix}-${RUN}-${sequence}`;
  }

  use(app: SettleProcess): void {
    this.app = app;
    this.api = new SettleClient(app);
  }

  get theRequest(): TrackedRequest {
    if (!this.request) throw new Error('no payment request was registered earlier in this scenario');
    return this.request;
  }

  get lastAnswer(): HttpAnswer {
    if (!this.last) throw new Error('no HTTP answer was received earlier in this scenario');
    return this.last;
  }
}

setWorldConstructor(SettleWorld);
