import type { Decider, DomainEvent } from '../envelope.js';
import { DomainError } from '../errors.js';

/**
 * API clients (merchants, operators, internal services) on `client-{id}` streams.
 *
 * Events never carry a secret: the client secret is stored as a salted scrypt hash
 * (`scrypt$salt$key`), and the webhook signing secret — which Settle must be able to read back
 * to sign webhooks — only as AES-256-GCM ciphertext under `SETTLE_SECRETS_KEY` (see
 * docs/security.md). Hashing and encryption happen at the edge; the decider only checks shapes.
 */
export type ClientRole = 'merchant' | 'operator' | 'admin' | 'service';
export const CLIENT_ROLES: readonly ClientRole[] = ['merchant', 'operator', 'admin', 'service'];

export const ERR_CLIENT_INVALID = 'SETTLE_ERR_CLIENT_INVALID';
export const ERR_CLIENT_EXISTS = 'SETTLE_ERR_CLIENT_EXISTS';
export const ERR_CLIENT_NOT_FOUND = 'SETTLE_ERR_CLIENT_NOT_FOUND';
export const ERR_CLIENT_DISABLED = 'SETTLE_ERR_CLIENT_DISABLED';

export const clientStreamId = (clientId: string): string => `client-${clientId}`;
export const CLIENT_STREAM_PREFIX = 'client-';
export const CLIENT_ID = /^[a-z0-9][a-z0-9-]{2,62}$/;

export type ClientRegistered = DomainEvent<
  'ClientRegistered',
  {
    clientId: string;
    name: string;
    roles: ClientRole[];
    merchantId?: string;
    secretHash: string;
    /** AES-256-GCM ciphertext of the `whsec_…` secret; never the secret itself. */
    webhookSecretCiphertext?: string;
    registeredAt: string;
  }
>;
export type ClientSecretRotated = DomainEvent<
  'ClientSecretRotated',
  { clientId: string; secretHash: string; rotatedAt: string }
>;
export type ClientDisabled = DomainEvent<'ClientDisabled', { clientId: string; reason: string; disabledAt: string }>;
export type WebhookSecretRotated = DomainEvent<
  'WebhookSecretRotated',
  {
    clientId: string;
    webhookSecretCiphertext: string;
    rotatedAt: string;
    /** Until then the previous secret still signs too (Standard Webhooks rotation grace). */
    previousValidUntil: string;
  }
>;
export type ClientEvent = ClientRegistered | ClientSecretRotated | ClientDisabled | WebhookSecretRotated;

export type RegisterClient = {
  type: 'RegisterClient';
  data: {
    clientId: string;
    name: string;
    roles: ClientRole[];
    merchantId?: string;
    secretHash: string;
    webhookSecretCiphertext?: string;
    now: string;
  };
};
export type RotateClientSecret = { type: 'RotateClientSecret'; data: { secretHash: string; now: string } };
export type DisableClient = { type: 'DisableClient'; data: { reason: string; now: string } };
export type RotateWebhookSecret = {
  type: 'RotateWebhookSecret';
  data: { webhookSecretCiphertext: string; graceMs: number; now: string };
};
export type ClientCommand = RegisterClient | RotateClientSecret | DisableClient | RotateWebhookSecret;

export interface ClientState {
  exists: boolean;
  clientId: string;
  name: string;
  roles: ClientRole[];
  merchantId?: string;
  secretHash: string;
  webhookSecretCiphertext?: string;
  previousWebhookSecretCiphertext?: string;
  previousWebhookSecretValidUntil?: string;
  disabled: boolean;
  registeredAt?: string;
  updatedAt?: string;
}

const invalid = (field: string, message: string) => new DomainError(ERR_CLIENT_INVALID, 'validation', message, field);
const HASH = /^scrypt\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/;
const CIPHERTEXT = /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function checkHash(secretHash: string) {
  // A plaintext secret must never reach an event: only the hash shape is accepted.
  if (!HASH.test(secretHash)) throw invalid('secretHash', 'secretHash must be an scrypt hash');
}
function checkCiphertext(field: string, value: string) {
  if (!CIPHERTEXT.test(value)) throw invalid(field, `${field} must be AES-GCM ciphertext (v1.<kid>.<iv>.<data>.<tag>)`);
}

export function decideClient(command: ClientCommand, state: ClientState): ClientEvent[] {
  if (command.type === 'RegisterClient') {
    const d = command.data;
    if (state.exists) throw new DomainError(ERR_CLIENT_EXISTS, 'conflict', `client ${d.clientId} already exists`, 'id');
    if (!CLIENT_ID.test(d.clientId))
      throw invalid('id', 'id must be 3–63 characters of a–z, 0–9 and "-", starting with a letter or digit');
    if (d.name.trim() === '' || d.name.length > 200) throw invalid('name', 'name must be 1–200 characters');
    if (d.roles.length === 0 || d.roles.some((r) => !CLIENT_ROLES.includes(r)))
      throw invalid('roles', `roles must be a non-empty list of ${CLIENT_ROLES.join(', ')}`);
    if (d.roles.includes('merchant') && !d.merchantId)
      throw invalid('merchantId', 'a merchant client needs a merchantId');
    checkHash(d.secretHash);
    if (d.webhookSecretCiphertext !== undefined) checkCiphertext('webhookSecretCiphertext', d.webhookSecretCiphertext);
    return [
      {
        type: 'ClientRegistered',
        data: {
          clientId: d.clientId,
          name: d.name,
          roles: [...new Set(d.roles)],
          ...(d.merchantId !== undefined ? { merchantId: d.merchantId } : {}),
          secretHash: d.secretHash,
          ...(d.webhookSecretCiphertext !== undefined ? { webhookSecretCiphertext: d.webhookSecretCiphertext } : {}),
          registeredAt: d.now,
        },
      },
    ];
  }
  if (!state.exists) throw new DomainError(ERR_CLIENT_NOT_FOUND, 'not_found', 'the client was not found', 'id');
  switch (command.type) {
    case 'DisableClient':
      if (state.disabled) return [];
      return [
        {
          type: 'ClientDisabled',
          data: { clientId: state.clientId, reason: command.data.reason, disabledAt: command.data.now },
        },
      ];
    case 'RotateClientSecret':
      if (state.disabled) throw new DomainError(ERR_CLIENT_DISABLED, 'illegal_state', 'the client is disabled', 'id');
      checkHash(command.data.secretHash);
      return [
        {
          type: 'ClientSecretRotated',
          data: { clientId: state.clientId, secretHash: command.data.secretHash, rotatedAt: command.data.now },
        },
      ];
    case 'RotateWebhookSecret': {
      if (state.disabled) throw new DomainError(ERR_CLIENT_DISABLED, 'illegal_state', 'the client is disabled', 'id');
      checkCiphertext('webhookSecretCiphertext', command.data.webhookSecretCiphertext);
      const previousValidUntil = new Date(Date.parse(command.data.now) + command.data.graceMs).toISOString();
      return [
        {
          type: 'WebhookSecretRotated',
          data: {
            clientId: state.clientId,
            webhookSecretCiphertext: command.data.webhookSecretCiphertext,
            rotatedAt: command.data.now,
            previousValidUntil,
          },
        },
      ];
    }
  }
}

export function evolveClient(state: ClientState, event: ClientEvent): ClientState {
  switch (event.type) {
    case 'ClientRegistered': {
      const d = event.data;
      return {
        exists: true,
        clientId: d.clientId,
        name: d.name,
        roles: d.roles,
        ...(d.merchantId !== undefined ? { merchantId: d.merchantId } : {}),
        secretHash: d.secretHash,
        ...(d.webhookSecretCiphertext !== undefined ? { webhookSecretCiphertext: d.webhookSecretCiphertext } : {}),
        disabled: false,
        registeredAt: d.registeredAt,
        updatedAt: d.registeredAt,
      };
    }
    case 'ClientSecretRotated':
      return { ...state, secretHash: event.data.secretHash, updatedAt: event.data.rotatedAt };
    case 'ClientDisabled':
      return { ...state, disabled: true, updatedAt: event.data.disabledAt };
    case 'WebhookSecretRotated': {
      const { previousWebhookSecretCiphertext: _p, previousWebhookSecretValidUntil: _u, ...rest } = state;
      return {
        ...rest,
        webhookSecretCiphertext: event.data.webhookSecretCiphertext,
        ...(state.webhookSecretCiphertext
          ? {
              previousWebhookSecretCiphertext: state.webhookSecretCiphertext,
              previousWebhookSecretValidUntil: event.data.previousValidUntil,
            }
          : {}),
        updatedAt: event.data.rotatedAt,
      };
    }
    default:
      return state;
  }
}

export const clientDecider: Decider<ClientState, ClientCommand, ClientEvent> = {
  initialState: () => ({ exists: false, clientId: '', name: '', roles: [], secretHash: '', disabled: false }),
  decide: decideClient,
  evolve: evolveClient,
};
