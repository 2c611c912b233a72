import { isIP } from 'node:net';

/**
 * Which network addresses a merchant webhook may reach. Used at registration (the callback URL's
 * host, after DNS resolution) and again at connect time by the notifier's agent, so a host that
 * re-resolves somewhere private (DNS rebinding) still fails.
 *
 * Addresses are compared as numbers in their own family only. `node:net` BlockList is not used on
 * purpose: it matches IPv4 rules against IPv4-mapped IPv6 addresses *and* an IPv6
 * `::ffff:0:0/96` rule against every plain IPv4 address, which silently forbids (or allows) far
 * more than the ranges say.
 *
 * @example
 *   const policy = createAddressPolicy({ allowLoopback: false, allowlist: ['10.20.0.0/16'] });
 *   policy.forbiddenReason('169.254.169.254'); // 'link-local (169.254.0.0/16)'
 *   policy.forbiddenReason('10.20.1.2');       // undefined: allowlisted
 */
export interface AddressPolicy {
  /** Why `address` (an IP literal, no brackets) may not be called, or undefined when it may. */
  forbiddenReason(address: string): string | undefined;
}

export interface Cidr {
  family: 4 | 6;
  network: bigint;
  prefix: number;
  text: string;
}

/** IANA special-purpose ranges (RFC 6890 and successors) that no webhook may target. */
export const FORBIDDEN_RANGES: readonly { cidr: string; label: string }[] = [
  { cidr: '0.0.0.0/8', label: '"this network"' },
  { cidr: '10.0.0.0/8', label: 'private' },
  { cidr: '100.64.0.0/10', label: 'carrier-grade NAT' },
  { cidr: '127.0.0.0/8', label: 'loopback' },
  { cidr: '169.254.0.0/16', label: 'link-local' },
  { cidr: '172.16.0.0/12', label: 'private' },
  { cidr: '192.0.0.0/24', label: 'IETF protocol assignments' },
  { cidr: '192.0.2.0/24', label: 'documentation' },
  { cidr: '192.88.99.0/24', label: '6to4 relay anycast' },
  { cidr: '192.168.0.0/16', label: 'private' },
  { cidr: '198.18.0.0/15', label: 'benchmarking' },
  { cidr: '198.51.100.0/24', label: 'documentation' },
  { cidr: '203.0.113.0/24', label: 'documentation' },
  { cidr: '224.0.0.0/4', label: 'multicast' },
  { cidr: '240.0.0.0/4', label: 'reserved' },
  { cidr: '::/128', label: 'unspecified' },
  { cidr: '::1/128', label: 'loopback' },
  { cidr: '::/96', label: 'IPv4-compatible' },
  { cidr: '::ffff:0:0/96', label: 'IPv4-mapped' },
  { cidr: '::ffff:0:0:0/96', label: 'IPv4-translated' },
  { cidr: '64:ff9b::/96', label: 'NAT64' },
  { cidr: '64:ff9b:1::/48', label: 'local-use NAT64' },
  { cidr: '100::/64', label: 'discard-only' },
  { cidr: '2001::/23', label: 'IETF protocol assignments (incl. Teredo)' },
  { cidr: '2001:db8::/32', label: 'documentation' },
  { cidr: '2002::/16', label: '6to4' },
  { cidr: '3fff::/20', label: 'documentation' },
  { cidr: '5f00::/16', label: 'SRv6 SIDs' },
  { cidr: 'fc00::/7', label: 'unique local (ULA)' },
  { cidr: 'fe80::/10', label: 'link-local' },
  { cidr: 'fec0::/10', label: 'site-local' },
  { cidr: 'ff00::/8', label: 'multicast' },
];

/** Only global unicast IPv6 (2000::/3) is ever called; everything else is reserved in some way. */
const GLOBAL_UNICAST_V6 = parseCidr('2000::/3');
const LOOPBACK = [parseCidr('127.0.0.0/8'), parseCidr('::1/128')];
const FORBIDDEN = FORBIDDEN_RANGES.map((r) => ({ ...parseCidr(r.cidr), label: r.label }));

/** An IP literal as a number, or undefined when `text` is not one (zone ids are not accepted). */
export function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  const family = isIP(text);
  if (family === 4) return { family, value: v4(text) };
  if (family !== 6 || text.includes('%')) return undefined;
  let body = text.toLowerCase();
  // A dotted IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (tail) {
    const n = v4(tail[1]!);
    body = `${body.slice(0, tail.index)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, rest] = body.includes('::') ? body.split('::') : [body, undefined];
  const left = head ? head.split(':') : [];
  const right = rest ? rest.split(':') : [];
  const groups =
    rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return undefined;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  return { family: 6, value };
}

function v4(text: string): bigint {
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

/** `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128). Throws on anything else. */
export function parseCidr(text: string): Cidr {
  const [addr = '', prefixText, extra] = text.trim().split('/');
  const parsed = parseAddress(addr);
  if (!parsed || extra !== undefined) throw new Error(`"${text}" is not a CIDR range such as 10.0.0.0/8 or fd00::/8`);
  const width = parsed.family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (
    !Number.isInteger(prefix) ||
    prefix < 0 ||
    prefix > width ||
    (prefixText !== undefined && !/^\d+$/.test(prefixText))
  )
    throw new Error(`"${text}" has a prefix length outside 0..${width}`);
  return { family: parsed.family, network: parsed.value & mask(parsed.family, prefix), prefix, text: text.trim() };
}

function mask(family: 4 | 6, prefix: number): bigint {
  const width = BigInt(family === 4 ? 32 : 128);
  const all = (1n << width) - 1n;
  return all ^ ((1n << (width - BigInt(prefix))) - 1n);
}

export function inCidr(address: { family: 4 | 6; value: bigint }, cidr: Cidr): boolean {
  return address.family === cidr.family && (address.value & mask(cidr.family, cidr.prefix)) === cidr.network;
}

/** The forbidden range an address falls in (`'link-local (169.254.0.0/16)'`), ignoring allowlists. */
export function forbiddenRangeOf(address: string): string | undefined {
  const parsed = parseAddress(address);
  if (!parsed) return 'not an IP address';
  const hit = FORBIDDEN.find((r) => inCidr(parsed, r));
  if (hit) return `${hit.label} (${hit.text})`;
  if (parsed.family === 6 && !inCidr(parsed, GLOBAL_UNICAST_V6)) return 'not global unicast (outside 2000::/3)';
  return undefined;
}

export function isLoopback(address: string): boolean {
  const parsed = parseAddress(address);
  return parsed !== undefined && LOOPBACK.some((r) => inCidr(parsed, r));
}

export function createAddressPolicy(opts: { allowLoopback: boolean; allowlist?: readonly string[] }): AddressPolicy {
  const allow = (opts.allowlist ?? []).map(parseCidr);
  return {
    forbiddenReason(address) {
      const parsed = parseAddress(address);
      if (!parsed) return 'not an IP address';
      if (allow.some((r) => inCidr(parsed, r))) return undefined;
      if (opts.allowLoopback && LOOPBACK.some((r) => inCidr(parsed, r))) return undefined;
      return forbiddenRangeOf(address);
    },
  };
}
