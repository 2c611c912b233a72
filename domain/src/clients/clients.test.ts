import { describe, it } from 'vitest';
import { DomainError } from '../errors.js';
import { specFor } from '../testing.js';
import {
  clientDecider,
  ERR_CLIENT_EXISTS,
  ERR_CLIENT_INVALID,
  type ClientEvent,
  type RegisterClient,
} from './index.js';

const spec = specFor(clientDecider);
const T0 = '2026-03-01T10:00:00.000Z';
const T1 = '2026-03-02T10:00:00.000Z';
const HASH = 'scrypt$c2FsdA==$a2V5';
const CIPHER = 'v1.k1.aXY.ZGF0YQ.dGFn';

const register = (over: Partial<RegisterClient['data']> = {}): RegisterClient => ({
  type: 'RegisterClient',
  data: {
    clientId: 'acme',
    name: 'Acme',
    roles: ['merchant'],
    merchantId: 'acme',
    secretHash: HASH,
    webhookSecretCiphertext: CIPHER,
    now: T0,
    ...over,
  },
});
const registered: ClientEvent = {
  type: 'ClientRegistered',
  data: {
    clientId: 'acme',
    name: 'Acme',
    roles: ['merchant'],
    merchantId: 'acme',
    secretHash: HASH,
    webhookSecretCiphertext: CIPHER,
    registeredAt: T0,
  },
};
const code = (c: string, field?: string) => (e: unknown) =>
  e instanceof DomainError && e.code === c && (field === undefined || e.field === field);

describe('client decider', () => {
  it('registers a client with hashes and ciphertext only', () => {
    spec([]).when(register()).then([registered]);
  });
  it('refuses a plaintext secret where a hash belongs', () => {
    spec([])
      .when(register({ secretHash: 'demo-secret' }))
      .thenThrows(code(ERR_CLIENT_INVALID, 'secretHash'));
  });
  it('refuses a plaintext webhook secret where ciphertext belongs', () => {
    spec([])
      .when(register({ webhookSecretCiphertext: 'whsec_abc' }))
      .thenThrows(code(ERR_CLIENT_INVALID, 'webhookSecretCiphertext'));
  });
  it('refuses a second registration, unknown roles and a merchant without merchantId', () => {
    spec([registered]).when(register()).thenThrows(code(ERR_CLIENT_EXISTS));
    spec([])
      .when(register({ roles: ['root' as never] }))
      .thenThrows(code(ERR_CLIENT_INVALID, 'roles'));
    const { merchantId: _m, ...noMerchant } = register().data;
    spec([]).when({ type: 'RegisterClient', data: noMerchant }).thenThrows(code(ERR_CLIENT_INVALID, 'merchantId'));
    spec([])
      .when(register({ clientId: 'A B' }))
      .thenThrows(code(ERR_CLIENT_INVALID, 'id'));
  });
  it('disables once; disabling again changes nothing', () => {
    const disabled: ClientEvent = {
      type: 'ClientDisabled',
      data: { clientId: 'acme', reason: 'leaked', disabledAt: T1 },
    };
    spec([registered])
      .when({ type: 'DisableClient', data: { reason: 'leaked', now: T1 } })
      .then([disabled]);
    spec([registered, disabled])
      .when({ type: 'DisableClient', data: { reason: 'again', now: T1 } })
      .then([]);
  });
  it('rotates the webhook secret with a grace period for the previous one', () => {
    spec([registered])
      .when({
        type: 'RotateWebhookSecret',
        data: { webhookSecretCiphertext: 'v1.k1.bmV3.bmV3.bmV3', graceMs: 86_400_000, now: T0 },
      })
      .then([
        {
          type: 'WebhookSecretRotated',
          data: {
            clientId: 'acme',
            webhookSecretCiphertext: 'v1.k1.bmV3.bmV3.bmV3',
            rotatedAt: T0,
            previousValidUntil: T1,
          },
        },
      ]);
  });
});
