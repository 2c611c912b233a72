import { scrypt, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

export type Role = 'merchant' | 'operator' | 'admin' | 'service';

export interface ApiClient {
  id: string;
  name: string;
  roles: Role[];
  /** Merchants act for themselves: their merchant id is their client id. */
  merchantId?: string;
  /** Standard Webhooks secret (`whsec_…`) used to sign webhooks sent to this merchant. */
  webhookSecret?: string;
  /** The secret rotated out, which still signs (alongside the new one) until `validUntil`. */
  previousWebhookSecret?: { secret: string; validUntil: string };
  disabled: boolean;
  secretHash: string;
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, 32);
  return `scrypt$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifySecret(secret: string, hash: string): Promise<boolean> {
  const [scheme, saltB64, keyB64] = hash.split('$');
  if (scheme !== 'scrypt' || !saltB64 || !keyB64) return false;
  const expected = Buffer.from(keyB64, 'base64');
  const actual = await scryptAsync(secret, Buffer.from(saltB64, 'base64'), expected.length);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Where API clients are looked up. */
export interface ClientRegistry {
  get(id: string): Promise<ApiClient | undefined>;
  /** The client if `secret` is right and the client is enabled. Constant work whether or not the id exists. */
  authenticate(id: string, secret: string): Promise<ApiClient | undefined>;
  list(): Promise<ApiClient[]>;
}

/** What an admin gives to create a client; the id defaults to a random one, a merchant's merchantId to its id. */
export interface NewClient {
  id?: string;
  name: string;
  roles: Role[];
  merchantId?: string;
}

/** A client just created, with its secrets in clear: shown once, never stored. */
export interface CreatedClient {
  client: ApiClient;
  clientSecret: string;
  webhookSecret?: string;
}

/** A registry that can also create and disable clients (the admin endpoints use it). */
export interface ClientAdmin extends ClientRegistry {
  create(input: NewClient, actor: string): Promise<CreatedClient>;
  /** Disables a client; undefined when there is no such client. Idempotent. */
  disable(id: string, reason: string, actor: string): Promise<ApiClient | undefined>;
}

export const generateClientSecret = (): string => `cs_${randomBytes(32).toString('base64url')}`;
/** Standard Webhooks secrets are `whsec_` + base64 of 24–64 random bytes. */
export const generateWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
export const generateClientId = (): string => `c-${randomBytes(8).toString('hex')}`;

export const DEMO_SECRET = 'demo-secret';
export const DEMO_WEBHOOK_SECRET = 'whsec_c2V0dGxlLWRlbW8td2ViaG9vay1zZWNyZXQtMDAwMQ==';

export class MemoryClientRegistry implements ClientAdmin {
  private readonly clients = new Map<string, ApiClient>();
  private dummyHash?: string;

  async add(
    client: Omit<ApiClient, 'secretHash' | 'disabled'> & { secret: string; disabled?: boolean },
  ): Promise<ApiClient> {
    const { secret, ...rest } = client;
    const stored: ApiClient = { ...rest, disabled: client.disabled ?? false, secretHash: await hashSecret(secret) };
    this.clients.set(stored.id, stored);
    return stored;
  }
  async get(id: string) {
    return this.clients.get(id);
  }
  async authenticate(id: string, secret: string) {
    const client = this.clients.get(id);
    this.dummyHash ??= await hashSecret(randomBytes(8).toString('hex'));
    const ok = await verifySecret(secret, client?.secretHash ?? this.dummyHash);
    return ok && client && !client.disabled ? client : undefined;
  }
  async list() {
    return [...this.clients.values()];
  }
  async create(input: NewClient): Promise<CreatedClient> {
    const id = input.id ?? generateClientId();
    if (this.clients.has(id)) throw new Error(`client ${id} already exists`);
    const merchant = input.roles.includes('merchant');
    const clientSecret = generateClientSecret();
    const webhookSecret = merchant ? generateWebhookSecret() : undefined;
    const client = await this.add({
      id,
      name: input.name,
      roles: input.roles,
      ...(merchant ? { merchantId: input.merchantId ?? id } : {}),
      ...(webhookSecret ? { webhookSecret } : {}),
      secret: clientSecret,
    });
    return { client, clientSecret, ...(webhookSecret ? { webhookSecret } : {}) };
  }
  async disable(id: string) {
    const client = this.clients.get(id);
    if (client) client.disabled = true;
    return client;
  }
}

/** Development mode's demo clients (DESIGN.md, Configuration). Never seeded in production. */
export const DEMO_CLIENTS: readonly (Omit<ApiClient, 'secretHash' | 'disabled'> & { secret: string })[] = [
  {
    id: 'demo-merchant',
    name: 'Demo merchant',
    roles: ['merchant'],
    merchantId: 'demo-merchant',
    webhookSecret: DEMO_WEBHOOK_SECRET,
    secret: DEMO_SECRET,
  },
  {
    id: 'demo-merchant-2',
    name: 'Demo merchant 2',
    roles: ['merchant'],
    merchantId: 'demo-merchant-2',
    webhookSecret: DEMO_WEBHOOK_SECRET,
    secret: DEMO_SECRET,
  },
  { id: 'demo-operator', name: 'Demo operator', roles: ['operator', 'admin'], secret: DEMO_SECRET },
];

export async function seedDemoClients(registry: MemoryClientRegistry): Promise<void> {
  for (const client of DEMO_CLIENTS) await registry.add(client);
}
