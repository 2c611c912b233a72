import { createPrivateKey, createPublicKey, generateKeyPairSync, createHash, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SignJWT, exportJWK, jwtVerify, type JWK } from 'jose';
import { secureToken, newId } from '../ids.js';
import type { ApiClient, Role } from './clients.js';
import { hashRefreshToken, MemoryRefreshTokenStore, type RefreshTokenStore } from './refreshTokens.js';

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

export interface TokenServiceOptions {
  /** The current signing key: a PKCS#8 PEM (Ed25519 → EdDSA, P-256 → ES256). */
  privateKeyPem: string;
  /** Keys rotated out: PEMs (public or private) that still verify, and are published in the JWKS. */
  previousKeys?: string[];
  issuer: string;
  audience: string;
  accessTtlS: number;
  refreshTtlS?: number;
  /** Where refresh tokens live; in memory unless given (use the SQL store to share across replicas). */
  refreshStore?: RefreshTokenStore;
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

interface VerificationKey {
  kid: string;
  alg: 'EdDSA' | 'ES256';
  key: KeyObject;
}

function verificationKey(publicKey: KeyObject): VerificationKey {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const kid = createHash('sha256').update(spki).digest('base64url').slice(0, 16);
  if (publicKey.asymmetricKeyType === 'ed25519') return { kid, alg: 'EdDSA', key: publicKey };
  if (publicKey.asymmetricKeyType === 'ec' && publicKey.asymmetricKeyDetails?.namedCurve === 'prime256v1')
    return { kid, alg: 'ES256', key: publicKey };
  throw new Error('JWT keys must be Ed25519 (EdDSA) or P-256 (ES256)');
}

const publicKeyOf = (pem: string): KeyObject =>
  pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);

/** Reads `SETTLE_JWT_PREVIOUS_KEYS`: inline PEMs (concatenated) or comma-separated file paths. */
export async function loadPreviousKeys(configured: string): Promise<string[]> {
  if (!configured.trim()) return [];
  if (configured.includes('BEGIN'))
    return [...configured.matchAll(/-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g)].map((m) => m[0]);
  return Promise.all(configured.split(',').map((p) => readFile(p.trim(), 'utf8')));
}

/**
 * Access tokens are signed JWTs (iss, aud, exp, nbf, jti, kid) verified against the key their
 * `kid` names — the current key or a previous one — so keys rotate without logging anyone out.
 * Refresh tokens are opaque, stored hashed, rotate on every use, and a reused one revokes its
 * whole family.
 */
export class TokenService {
  private readonly privateKey: KeyObject;
  private readonly signing: VerificationKey;
  private readonly keys = new Map<string, VerificationKey>();
  private readonly refreshStore: RefreshTokenStore;
  private readonly now: () => number;

  constructor(private readonly opts: TokenServiceOptions) {
    this.privateKey = createPrivateKey(opts.privateKeyPem);
    this.signing = verificationKey(createPublicKey(this.privateKey));
    this.keys.set(this.signing.kid, this.signing);
    for (const pem of opts.previousKeys ?? []) {
      const k = verificationKey(publicKeyOf(pem));
      if (!this.keys.has(k.kid)) this.keys.set(k.kid, k);
    }
    this.refreshStore = opts.refreshStore ?? new MemoryRefreshTokenStore();
    this.now = opts.now ?? Date.now;
  }

  /** The id of the key that signs new tokens. */
  get kid(): string {
    return this.signing.kid;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    const keys = await Promise.all(
      [...this.keys.values()].map(async (k) => ({ ...(await exportJWK(k.key)), kid: k.kid, alg: k.alg, use: 'sig' })),
    );
    return { keys };
  }

  async issue(client: ApiClient, family = newId()): Promise<TokenPair> {
    const nowS = Math.floor(this.now() / 1000);
    const access = await new SignJWT({ roles: client.roles, ...(client.merchantId ? { mid: client.merchantId } : {}) })
      .setProtectedHeader({ alg: this.signing.alg, kid: this.signing.kid, typ: 'JWT' })
      .setIssuer(this.opts.issuer)
      .setAudience(this.opts.audience)
      .setSubject(client.id)
      .setIssuedAt(nowS)
      .setNotBefore(nowS)
      .setExpirationTime(nowS + this.opts.accessTtlS)
      .setJti(newId())
      .sign(this.privateKey);
    const refreshToken = secureToken('rt_', 32);
    await this.refreshStore.save(
      hashRefreshToken(refreshToken),
      { clientId: client.id, family },
      this.now() + (this.opts.refreshTtlS ?? 30 * 86_400) * 1000,
    );
    return {
      access_token: access,
      refresh_token: refreshToken,
      token_type: 'Bearer',
      expires_in: this.opts.accessTtlS,
    };
  }

  /** Exchanges a refresh token for its family; the caller re-checks the client before issuing. */
  async consumeRefresh(token: string): Promise<{ clientId: string; family: string }> {
    const outcome = await this.refreshStore.consume(hashRefreshToken(token), this.now());
    switch (outcome.state) {
      case 'ok':
        return { clientId: outcome.clientId, family: outcome.family };
      case 'reused':
        // A rotated token came back: someone holds a copy. The store has revoked the family.
        throw new TokenError('invalid_grant', 'the refresh token was already used; its family is revoked');
      case 'revoked':
        throw new TokenError('invalid_grant', 'the refresh token has been revoked');
      default:
        throw new TokenError('invalid_grant', 'the refresh token is unknown or expired');
    }
  }

  revokeFamily(family: string): Promise<void> {
    return this.refreshStore.revokeFamily(family);
  }

  async verify(token: string): Promise<Principal> {
    try {
      const { payload } = await jwtVerify(
        token,
        (header) => {
          const key = header.kid === undefined ? undefined : this.keys.get(header.kid);
          if (!key) throw new TokenError('invalid_token', 'unknown key id');
          if (header.alg !== key.alg) throw new TokenError('invalid_token', 'the algorithm does not match the key');
          return key.key;
        },
        {
          issuer: this.opts.issuer,
          audience: this.opts.audience,
          algorithms: ['EdDSA', 'ES256'],
          currentDate: new Date(this.now()),
          requiredClaims: ['sub', 'exp', 'nbf', 'jti', 'iat'],
          typ: 'JWT',
        },
      );
      const roles = Array.isArray(payload.roles) ? (payload.roles.filter((r) => typeof r === 'string') as Role[]) : [];
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
