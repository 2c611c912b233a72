import { randomBytes } from 'node:crypto';
import {
  CLIENT_STREAM_PREFIX,
  clientDecider,
  clientStreamId,
  DomainError,
  ERR_CLIENT_EXISTS,
  type ClientEvent,
  type ClientState,
  type StoredEvent,
} from '@settle/domain';
import { handleCommand } from '../commandHandler.js';
import type { EventStore, Subscription } from '../eventStore/port.js';
import type { Logger } from '../logger.js';
import {
  DEMO_CLIENTS,
  generateClientId,
  generateClientSecret,
  generateWebhookSecret,
  hashSecret,
  verifySecret,
  type ApiClient,
  type ClientAdmin,
  type CreatedClient,
  type NewClient,
} from './clients.js';
import type { SecretBox } from './secretBox.js';

export interface EventSourcedClientRegistryOptions {
  eventStore: EventStore;
  /** Seals webhook secrets into events and opens them for signing. */
  secrets: SecretBox;
  logger?: Logger;
  now?: () => Date;
}

interface Entry {
  state: ClientState;
  revision: number;
  client: ApiClient;
}

/**
 * API clients folded from their `client-{id}` streams. The fold is cached in memory and kept
 * current by a subscription to `client-` streams, so a client created or disabled through another
 * replica applies here too (at once with PostgreSQL NOTIFY, within one poll otherwise); this
 * replica's own writes apply before the call returns. A miss reads the stream, so a client created
 * elsewhere a moment ago can log in at once.
 *
 * @example
 * const registry = new EventSourcedClientRegistry({ eventStore, secrets });
 * await registry.start();
 * if (!production) await registry.seedDemoClients();
 */
export class EventSourcedClientRegistry implements ClientAdmin {
  private readonly entries = new Map<string, Entry>();
  private subscription?: Subscription;
  private dummyHash?: string;
  private readonly now: () => Date;

  constructor(private readonly opts: EventSourcedClientRegistryOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /** Loads every client, then follows new client events. */
  async start(): Promise<void> {
    let after = 0;
    for (;;) {
      const batch = await this.opts.eventStore.readAll({ after, limit: 500, streamPrefixes: [CLIENT_STREAM_PREFIX] });
      if (batch.length === 0) break;
      this.applyAll(batch);
      after = batch[batch.length - 1]!.globalPosition;
    }
    this.subscription = this.opts.eventStore.subscribe(
      async (events) => {
        try {
          await this.applyLive(events);
        } catch (error) {
          this.opts.logger?.error({ err: error }, 'client registry could not apply client events');
        }
      },
      { after, streamPrefixes: [CLIENT_STREAM_PREFIX] },
    );
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
  }

  async get(id: string): Promise<ApiClient | undefined> {
    const cached = this.entries.get(id);
    if (cached) return cached.client;
    return (await this.refresh(id))?.client;
  }

  async authenticate(id: string, secret: string): Promise<ApiClient | undefined> {
    const client = await this.get(id);
    this.dummyHash ??= await hashSecret(randomBytes(8).toString('hex'));
    // The same scrypt work whether or not the id exists: timing does not reveal client ids.
    const ok = await verifySecret(secret, client?.secretHash ?? this.dummyHash);
    return ok && client && !client.disabled ? client : undefined;
  }

  async list(): Promise<ApiClient[]> {
    return [...this.entries.values()].map((e) => e.client).sort((a, b) => a.id.localeCompare(b.id));
  }

  async create(input: NewClient, actor: string): Promise<CreatedClient> {
    const id = input.id ?? generateClientId();
    const merchant = input.roles.includes('merchant');
    const clientSecret = generateClientSecret();
    const webhookSecret = merchant ? generateWebhookSecret() : undefined;
    await this.register(
      { id, name: input.name, roles: input.roles, ...(merchant ? { merchantId: input.merchantId ?? id } : {}) },
      clientSecret,
      webhookSecret,
      actor,
    );
    const entry = await this.refresh(id);
    return { client: entry!.client, clientSecret, ...(webhookSecret ? { webhookSecret } : {}) };
  }

  async disable(id: string, reason: string, actor: string): Promise<ApiClient | undefined> {
    if (!(await this.get(id))) return undefined;
    await handleCommand(
      this.opts.eventStore,
      clientStreamId(id),
      clientDecider,
      { type: 'DisableClient', data: { reason, now: this.now().toISOString() } },
      { metadata: { actor } },
    );
    return (await this.refresh(id))?.client;
  }

  /**
   * Development's demo clients, as events, if their streams do not exist yet. Idempotent: the
   * event ids derive from the client id, so replicas seeding at once write each client once, and
   * a demo client disabled or rotated later is never re-created.
   */
  async seedDemoClients(): Promise<void> {
    for (const demo of DEMO_CLIENTS) {
      if (this.entries.has(demo.id) || (await this.refresh(demo.id))) continue;
      const { secret, webhookSecret, ...rest } = demo;
      try {
        await this.register(rest, secret, webhookSecret, 'system:seed', `seed/client/${demo.id}`);
      } catch (error) {
        if (!(error instanceof DomainError && error.code === ERR_CLIENT_EXISTS)) throw error;
      }
      await this.refresh(demo.id);
    }
  }

  private async register(
    input: { id: string; name: string; roles: ApiClient['roles']; merchantId?: string },
    clientSecret: string,
    webhookSecret: string | undefined,
    actor: string,
    causationEventId?: string,
  ): Promise<void> {
    await handleCommand(
      this.opts.eventStore,
      clientStreamId(input.id),
      clientDecider,
      {
        type: 'RegisterClient',
        data: {
          clientId: input.id,
          name: input.name,
          roles: input.roles,
          ...(input.merchantId !== undefined ? { merchantId: input.merchantId } : {}),
          secretHash: await hashSecret(clientSecret),
          ...(webhookSecret ? { webhookSecretCiphertext: this.opts.secrets.seal(webhookSecret) } : {}),
          now: this.now().toISOString(),
        },
      },
      { metadata: { actor }, ...(causationEventId ? { causationEventId } : {}) },
    );
  }

  /** Re-reads one client's stream (after a write, on a miss, or when live events skip ahead). */
  private async refresh(id: string): Promise<Entry | undefined> {
    const events = await this.opts.eventStore.readStream(clientStreamId(id));
    if (events.length === 0) return undefined;
    let state = clientDecider.initialState();
    for (const e of events) state = clientDecider.evolve(state, e as unknown as ClientEvent);
    const revision = events[events.length - 1]!.streamPosition;
    const current = this.entries.get(id);
    if (current && current.revision >= revision) return current;
    const entry = { state, revision, client: this.toClient(state) };
    this.entries.set(id, entry);
    return entry;
  }

  private applyAll(events: StoredEvent[]): string[] {
    const gaps: string[] = [];
    for (const event of events) {
      const id = event.streamId.slice(CLIENT_STREAM_PREFIX.length);
      const current = this.entries.get(id);
      const revision = current?.revision ?? -1;
      if (event.streamPosition <= revision) continue;
      if (event.streamPosition !== revision + 1) {
        gaps.push(id);
        continue;
      }
      const state = clientDecider.evolve(
        current?.state ?? clientDecider.initialState(),
        event as unknown as ClientEvent,
      );
      this.entries.set(id, { state, revision: event.streamPosition, client: this.toClient(state) });
    }
    return gaps;
  }

  private async applyLive(events: StoredEvent[]): Promise<void> {
    for (const id of new Set(this.applyAll(events))) await this.refresh(id);
  }

  private toClient(state: ClientState): ApiClient {
    const webhookSecret = state.webhookSecretCiphertext
      ? this.open(state.webhookSecretCiphertext, state.clientId)
      : undefined;
    const previous =
      state.previousWebhookSecretCiphertext && state.previousWebhookSecretValidUntil
        ? this.open(state.previousWebhookSecretCiphertext, state.clientId)
        : undefined;
    return {
      id: state.clientId,
      name: state.name,
      roles: state.roles,
      ...(state.merchantId !== undefined ? { merchantId: state.merchantId } : {}),
      ...(webhookSecret ? { webhookSecret } : {}),
      ...(previous
        ? { previousWebhookSecret: { secret: previous, validUntil: state.previousWebhookSecretValidUntil! } }
        : {}),
      disabled: state.disabled,
      secretHash: state.secretHash,
    };
  }

  private open(ciphertext: string, clientId: string): string | undefined {
    try {
      return this.opts.secrets.open(ciphertext);
    } catch (error) {
      // A wrong SETTLE_SECRETS_KEY: the client still authenticates, its webhooks cannot be signed.
      this.opts.logger?.error(
        { clientId, err: error },
        'cannot decrypt a webhook secret: is SETTLE_SECRETS_KEY the key it was sealed with?',
      );
      return undefined;
    }
  }
}
