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

export const DEMO_SECRET = 'demo-secret';
export const DEMO_WEBHOOK_SECRET = 'whsec_c2V0dGxlLWRlbW8td2ViaG9vay1zZWNyZXQtMDAwMQ==';

export class MemoryClientRegistry implements ClientRegistry {
  private readonly clients = new Map<string, ApiClient>();
  private dummyHash?: string;

  async add(client: Omit<ApiClient, 'secretHash' | 'disabled'> & { secret: string; disabled?: boolean }): Promise<ApiClient> {
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
}

/** Development mode's demo clients (DESIGN.md, Configuration). Never seeded in production. */
export async function seedDemoClients(registry: MemoryClientRegistry): Promise<void> {
  await registry.add({ id: 'demo-merchant', name: 'Demo merchant', roles: ['merchant'], merchantId: 'demo-merchant', webhookSecret: DEMO_WEBHOOK_SECRET, secret: DEMO_SECRET });
  await registry.add({ id: 'demo-merchant-2', name: 'Demo merchant 2', roles: ['merchant'], merchantId: 'demo-merchant-2', webhookSecret: DEMO_WEBHOOK_SECRET, secret: DEMO_SECRET });
  await registry.add({ id: 'demo-operator', name: 'Demo operator', roles: ['operator', 'admin'], secret: DEMO_SECRET });
}
