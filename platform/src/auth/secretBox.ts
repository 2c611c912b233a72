import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Encrypts secrets Settle must read back (webhook signing secrets) before they go into an event.
 * AES-256-GCM with a random 96-bit IV; the output `v1.<kid>.<iv>.<ciphertext>.<tag>` (base64url)
 * names the key, so a later key rotation can keep older keys for decryption.
 *
 * @example
 * const box = new SecretBox(await loadOrCreateSecretsKey(config.secretsKey, join(dataDir, 'keys', 'secrets.key')));
 * const sealed = box.seal('whsec_…'); box.open(sealed) === 'whsec_…';
 */
export class SecretBox {
  private readonly keys = new Map<string, Buffer>();
  private readonly current: string;

  /** `keys`: 32-byte keys; the first encrypts, all decrypt. */
  constructor(...keys: Buffer[]) {
    if (keys.length === 0) throw new Error('SecretBox needs a key');
    for (const key of keys) {
      if (key.length !== 32) throw new Error('SETTLE_SECRETS_KEY must be 32 bytes (base64 or hex)');
      this.keys.set(keyId(key), key);
    }
    this.current = keyId(keys[0]!);
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.current)!, iv);
    cipher.setAAD(Buffer.from(`v1.${this.current}`));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      'v1',
      this.current,
      iv.toString('base64url'),
      data.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
    ].join('.');
  }

  open(sealed: string): string {
    const [version, kid, iv, data, tag] = sealed.split('.');
    if (version !== 'v1' || !kid || !iv || data === undefined || !tag) throw new Error('not a sealed secret');
    const key = this.keys.get(kid);
    if (!key) throw new Error(`no secrets key with id ${kid}`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(`v1.${kid}`));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  }
}

const keyId = (key: Buffer): string => createHash('sha256').update(key).digest('base64url').slice(0, 8);

/** Parses a configured key: 64 hex characters or base64 of 32 bytes. */
export function parseSecretsKey(raw: string): Buffer {
  const trimmed = raw.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new Error('SETTLE_SECRETS_KEY must be 32 bytes, as 64 hex characters or base64');
  return key;
}

/** The configured key, or (development) one generated once and kept under the data dir. */
export async function loadOrCreateSecretsKey(configured: string, devKeyPath: string): Promise<Buffer> {
  if (configured) return parseSecretsKey(configured);
  if (existsSync(devKeyPath)) return parseSecretsKey(await readFile(devKeyPath, 'utf8'));
  const key = randomBytes(32);
  await mkdir(dirname(devKeyPath), { recursive: true });
  await writeFile(devKeyPath, key.toString('base64'), { mode: 0o600 });
  return key;
}
