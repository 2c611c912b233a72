import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { eventually } from './wait.js';

export interface RequestUpdate {
  id: string;
  merchantId: string;
  status: string;
  attempts: number;
}

const SETTLE_TIME_MS = 300;

/**
 * A `requestUpdated` subscription over `graphql-transport-ws`, authenticated the way the docs
 * say: `connection_init` payload `{ authorization: "Bearer …" }`. Keeps every update and error.
 */
export class UpdateSubscription {
  readonly updates: RequestUpdate[] = [];
  readonly errors: unknown[] = [];
  completed = false;
  private unsubscribe?: () => void;

  private constructor(private readonly client: Client) {}

  static async open(
    wsUrl: string,
    token: string,
    args: { id?: string; merchantId?: string },
  ): Promise<UpdateSubscription> {
    let connected!: () => void;
    let refused!: (error: unknown) => void;
    const ready = new Promise<void>((resolve, reject) => {
      connected = resolve;
      refused = reject;
    });
    const client = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${token}` },
      on: {
        connected: () => connected(),
        closed: (event) => refused(new Error(`websocket closed before it was acknowledged: ${JSON.stringify(event)}`)),
      },
      onNonLazyError: (error) => refused(error),
    });
    const sub = new UpdateSubscription(client);
    await ready;
    sub.unsubscribe = client.subscribe<{ requestUpdated: RequestUpdate }>(
      {
        query: `subscription ($id: ID, $merchantId: ID) { requestUpdated(id: $id, merchantId: $merchantId) { id merchantId status attempts } }`,
        variables: { ...(args.id ? { id: args.id } : {}), ...(args.merchantId ? { merchantId: args.merchantId } : {}) },
      },
      {
        next: (result) => {
          if (result.errors?.length) sub.errors.push(...result.errors);
          if (result.data?.requestUpdated) sub.updates.push(result.data.requestUpdated);
        },
        error: (error) => sub.errors.push(error),
        complete: () => (sub.completed = true),
      },
    );
    // The protocol does not acknowledge a subscribe message: give the server a moment to register it.
    await new Promise((r) => setTimeout(r, SETTLE_TIME_MS));
    return sub;
  }

  /** Statuses received, with consecutive repeats collapsed: the status changes the subscriber saw. */
  statusChanges(): string[] {
    return this.updates.map((u) => u.status).filter((s, i, all) => i === 0 || all[i - 1] !== s);
  }

  async waitForStatus(status: string, timeoutMs: number): Promise<void> {
    await eventually(`a requestUpdated message with status ${status}`, timeoutMs, async () => {
      if (this.errors.length) throw new Error(`the subscription failed: ${JSON.stringify(this.errors)}`);
      if (!this.updates.some((u) => u.status === status))
        throw new Error(`statuses received so far: ${JSON.stringify(this.statusChanges())}`);
    });
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    await this.client.dispose();
  }
}
