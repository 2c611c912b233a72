import { lookup } from 'node:dns/promises';
import { ERR_VALIDATION, HttpProblem } from '../errors.js';
import {
  createAddressPolicy,
  inCidr,
  isLoopback,
  parseAddress,
  parseCidr,
  type AddressPolicy,
} from './addressPolicy.js';

export interface CallbackUrlPolicy {
  /** Throws a 422 problem naming `field` when the URL may not be called. */
  check(url: string, field: string): Promise<void>;
  /** The address rule behind `check`, for the notifier's connect-time re-check. */
  readonly addresses: AddressPolicy;
}

export interface CallbackUrlPolicyOptions {
  production: boolean;
  /** CIDR ranges that may be called even though they are private (internal deployments). */
  allowlist?: readonly string[];
  resolve?: (host: string) => Promise<string[]>;
}

const MAX_ADDRESSES = 32;

/**
 * SSRF rules for merchants' callback URLs: `https` only in production (development also takes
 * `http`); no credentials in the URL; the host must not be an IP literal (development accepts a
 * loopback literal, the allowlist accepts its own ranges) and must resolve only to addresses the
 * {@link AddressPolicy} allows. Development mode allows loopback and nothing else private.
 */
export function createCallbackUrlPolicy(opts: CallbackUrlPolicyOptions): CallbackUrlPolicy {
  const allowlist = (opts.allowlist ?? []).map(parseCidr);
  const addresses = createAddressPolicy({ allowLoopback: !opts.production, allowlist: opts.allowlist ?? [] });
  const resolve =
    opts.resolve ?? (async (host: string) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address));
  const reject = (field: string, detail: string) =>
    new HttpProblem(422, ERR_VALIDATION, 'Invalid callback URL', detail, field);
  return {
    addresses,
    async check(raw, field) {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw reject(field, `${field} must be an absolute URL`);
      }
      if (opts.production ? url.protocol !== 'https:' : url.protocol !== 'https:' && url.protocol !== 'http:')
        throw reject(field, `${field} must use ${opts.production ? 'https' : 'http or https'}`);
      if (url.username || url.password) throw reject(field, `${field} must not carry credentials`);
      // WHATWG parsing already turned 0x7f.1, 2130706433 and friends into dotted quads.
      const host = url.hostname.replace(/^\[|\]$/g, '');
      if (host === '') throw reject(field, `${field} has no host`);
      let resolved: string[];
      if (parseAddress(host) !== undefined) {
        const reason = addresses.forbiddenReason(host);
        if (reason) throw reject(field, `${field} points at a forbidden address: ${reason}`);
        // Literals are refused unless the allowlist (or development, for loopback) names them:
        // a merchant's host name can move, an address baked into events cannot.
        const named = (!opts.production && isLoopback(host)) || allowlist.some((r) => inCidr(parseAddress(host)!, r));
        if (!named) throw reject(field, `${field} must name a host, not an IP address`);
        return;
      }
      try {
        resolved = await resolve(host);
      } catch {
        throw reject(field, `${field} host ${host} does not resolve`);
      }
      if (resolved.length === 0) throw reject(field, `${field} host ${host} does not resolve`);
      for (const address of resolved.slice(0, MAX_ADDRESSES)) {
        const reason = addresses.forbiddenReason(address);
        if (reason) throw reject(field, `${field} host ${host} resolves to a forbidden address: ${reason}`);
      }
    },
  };
}

export { createAddressPolicy, forbiddenRangeOf, parseCidr, type AddressPolicy } from './addressPolicy.js';
