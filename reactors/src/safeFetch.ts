import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';

export const ERR_WEBHOOK_FORBIDDEN_ADDRESS = 'SETTLE_ERR_WEBHOOK_FORBIDDEN_ADDRESS';

/** Thrown (as the fetch's rejection) when the merchant's host resolves, at connect time, somewhere it may not. */
export class ForbiddenAddressError extends Error {
  readonly code = ERR_WEBHOOK_FORBIDDEN_ADDRESS;
  constructor(
    readonly host: string,
    readonly address: string,
    reason: string,
  ) {
    super(`refused to connect to ${host}: ${address} is ${reason}`);
    this.name = 'ForbiddenAddressError';
  }
}

/** The part of a fetch Response the notifier reads. */
export interface WebhookResponse {
  status: number;
  body?: { cancel(): Promise<void> } | null;
}

/** What the notifier sends webhooks with (global `fetch` fits). */
export type WebhookFetch = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; signal?: AbortSignal; redirect?: 'manual' },
) => Promise<WebhookResponse>;

export interface SafeFetchOptions {
  /** Why an address may not be called, or undefined when it may (command-side's `AddressPolicy`). */
  forbiddenReason(address: string): string | undefined;
  /** DNS lookup (tests stand in a rebinding resolver); `node:dns` lookup by default. */
  lookup?: (
    hostname: string,
    options: LookupOptions & { all: true },
    callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
  ) => void;
  connectTimeoutMs?: number;
}

/**
 * An undici Agent that checks every address it is about to connect to, after its own DNS
 * resolution: a host that passed the registration check and now resolves to 169.254.169.254 or
 * 127.0.0.1 (DNS rebinding) is refused before a packet is sent. IP-literal hosts never reach a
 * lookup, so they are checked in `connect` itself.
 */
export function createSafeAgent(opts: SafeFetchOptions): Agent {
  const resolveAll = opts.lookup ?? ((host, options, cb) => dnsLookup(host, options, cb));
  const lookup: LookupFunction = (hostname, options, callback) => {
    resolveAll(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return (callback as (e: Error) => void)(err);
      if (addresses.length === 0)
        return (callback as (e: Error) => void)(
          Object.assign(new Error(`${hostname} does not resolve`), { code: 'ENOTFOUND' }),
        );
      // Every address must pass: the socket may fall back from one to the next (happy eyeballs).
      for (const a of addresses) {
        const reason = opts.forbiddenReason(a.address);
        if (reason) return (callback as (e: Error) => void)(new ForbiddenAddressError(hostname, a.address, reason));
      }
      if (options.all) (callback as (e: null, a: LookupAddress[]) => void)(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  const base = buildConnector({ lookup, timeout: opts.connectTimeoutMs ?? 10_000 } as buildConnector.BuildOptions);
  return new Agent({
    connect(options, callback) {
      const host = options.hostname.replace(/^\[|\]$/g, '');
      if (isIP(host)) {
        const reason = opts.forbiddenReason(host);
        if (reason) return callback(new ForbiddenAddressError(host, host, reason), null);
      }
      return base(options, callback);
    },
  });
}

/**
 * A fetch for merchant webhooks: through {@link createSafeAgent}, never following redirects (a
 * 3xx is the merchant's answer, not an instruction to call somewhere else). A refused address
 * rejects with {@link ForbiddenAddressError} itself rather than undici's generic "fetch failed".
 */
export function createSafeFetch(opts: SafeFetchOptions): WebhookFetch & { close(): Promise<void> } {
  const agent = createSafeAgent(opts);
  const safeFetch = async (url: string, init: Parameters<WebhookFetch>[1]): Promise<WebhookResponse> => {
    const protocol = new URL(url).protocol;
    if (protocol !== 'https:' && protocol !== 'http:') throw new Error(`refused to call a ${protocol} URL`);
    try {
      return await undiciFetch(url, { ...init, redirect: 'manual', dispatcher: agent });
    } catch (error) {
      let cause: unknown = error;
      for (let i = 0; i < 5 && cause instanceof Error; i++) {
        if (cause instanceof ForbiddenAddressError) throw cause;
        cause = cause.cause;
      }
      throw error;
    }
  };
  return Object.assign(safeFetch, { close: () => agent.close() });
}
