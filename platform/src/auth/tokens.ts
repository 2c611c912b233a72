import { createPrivateKey, createPublicKey, generateKeyPairSync, createHash, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SignJWT, exportJWK, jwtVerify, type JWK } from 'jose';
import { secureToken, newId } from '../ids.js';
import type { ApiClient, Role } from './clients.js';

export interface Principal {
  clientId: string;
  roles: Role[];
  merchantId?: string;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

export class TokenError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'TokenError';
    this.code = code;
  }
}

interface RefreshEntry {
  clientId: string;
  family: string;
  used: boolean;
  expiresAt: number;
}

export interface TokenServiceOptions {
  privateKeyPem: string;
  issuer: string;
  audience: string;
  accessTtlS: number;
  refreshTtlS?: number;
  now?: () => number;
}

/** Loads the signing key from configuration, or (development) from/into a file under the data dir. */
export async function loadOrCreateSigningKey(configured: string, devKeyPath: string): Promise<string> {
  if (configured) return configured.includes('BEGIN') ? configured : readFile(configured, 'utf8');
  if (existsSync(devKeyPath)) return readFile(devKeyPath, 'utf8');
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await mkdir(dirname(devKeyPath), { recursive: true });
  await writeFile(devKeyPath, pem, { mode: 0o600 });
  return pem;
}

/**
 * Access tokens are EdDSA-signed JWTs (iss, aud, exp, nbf, jti, kid); refresh tokens are opaque,
 * rotate on every use, and a reused one revokes its whole family.
 */
export class TokenService {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  readonly kid: string;
  private readonly refresh = new Map<string, RefreshEntry>();
  private readonly revokedFamilies = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly opts: TokenServiceOptions) {
    this.privateKey = createPrivateKey(opts.privateKeyPem);
    this.publicKey = createPublicKey(this.privateKey);
    const spki = this.publicKey.export({ type: 'spki', format: 'der' });
    this.kid = createHash('sha256').update(spki).digest('base64url').slice(0, 16);
    this.now = opts.now ?? Date.now;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    const jwk = await exportJWK(this.publicKey);
    return { keys: [{ ...jwk, kid: this.kid, alg: 'EdDSA', use: 'sig' }] };
  }

  async issue(client: ApiClient, family = newId()): Promise<TokenPair> {
    const nowS = Math.floor(this.now() / 1000);
    const access = await new SignJWT({ roles: client.roles, ...(client.merchantId ? { mid: client.merchantId } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.opts.issuer)
      .setAudience(this.opts.audience)
      .setSubject(client.id)
      .setIssuedAt(nowS)
      .setNotBefore(nowS)
      .setExpirationTime(nowS + this.opts.accessTtlS)
      .setJti(newId())
      .sign(this.privateKey);
    const refreshToken = secureToken('rt_', 32);
    this.refresh.set(refreshToken, {
      clientId: client.id,
      family,
      used: false,
      expiresAt: this.now() + (this.opts.refreshTtlS ?? 30 * 86_400) * 1000,
    });
    return { access_token: access, refresh_token: refreshToken, token_type: 'Bearer', expires_in: this.opts.accessTtlS };
  }

  /** Exchanges a refresh token for a new pair; returns the client id to re-check before issuing. */
  consumeRefresh(token: string): { clientId: string; family: string } {
    const entry = this.refresh.get(token);
    if (!entry || entry.expiresAt < this.now()) throw new TokenError('invalid_grant', 'the refresh token is unknown or expired');
    if (this.revokedFamilies.has(entry.family)) throw new TokenError('invalid_grant', 'the refresh token has been revoked');
    if (entry.used) {
      // A rotated token came back: someone holds a copy. Revoke every token of the family.
      this.revokedFamilies.add(entry.family);
      throw new TokenError('invalid_grant', 'the refresh token was already used; its family is revoked');
    }
    entry.used = true;
    return { clientId: entry.clientId, family: entry.family };
  }

  async verify(token: string): Promise<Principal> {
    try {
      const { payload } = await jwtVerify(token, this.publicKey, {
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        algorithms: ['EdDSA'],
        currentDate: new Date(this.now()),
        requiredClaims: ['sub', 'exp', 'nbf', 'jti'],
      });
      const roles = Array.isArray(payload.roles) ? (payload.roles as Role[]) : [];
      return {
        clientId: payload.sub!,
        roles,
        ...(typeof payload.mid === 'string' ? { merchantId: payload.mid } : {}),
      };
    } catch (error) {
      throw new TokenError('invalid_token', (error as Error).message);
    }
  }
}

export const hasRole = (p: Principal, ...roles: Role[]): boolean => roles.some((r) => p.roles.includes(r));
