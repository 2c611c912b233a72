import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { ERR_VALIDATION, HttpProblem } from '../errors.js';

export interface CallbackUrlPolicy {
  /** Throws a 422 problem naming `field` when the URL may not be called. */
  check(url: string, field: string): Promise<void>;
}

/** Ranges no webhook may target: loopback, private, link-local (cloud metadata), CGNAT, ULA, multicast, reserved. */
export function forbiddenRanges(): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of [
    ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
    ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
    ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
  ] as const)
    list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of [
    ['::', 128], ['::1', 128], ['::ffff:0:0', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001:db8::', 32],
    ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
  ] as const)
    list.addSubnet(net, prefix, 'ipv6');
  return list;
}

const LOOPBACK = (() => {
  const l = new BlockList();
  l.addSubnet('127.0.0.0', 8, 'ipv4');
  l.addAddress('::1', 'ipv6');
  return l;
})();

export function createCallbackUrlPolicy(opts: { production: boolean; resolve?: (host: string) => Promise<string[]> }): CallbackUrlPolicy {
  const forbidden = forbiddenRanges();
  const resolve = opts.resolve ?? (async (host: string) => (await lookup(host, { all: true })).map((a) => a.address));
  const reject = (field: string, detail: string) => new HttpProblem(422, ERR_VALIDATION, 'Invalid callback URL', detail, field);
  return {
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
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const family = isIP(host);
      let addresses: string[];
      if (family !== 0) addresses = [host];
      else {
        try {
          addresses = await resolve(host);
        } catch {
          throw reject(field, `${field} host ${host} does not resolve`);
        }
      }
      for (const address of addresses) {
        const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
        // Development may call a merchant's test server on this machine; nothing else private.
        if (!opts.production && LOOPBACK.check(address, type)) continue;
        if (forbidden.check(address, type))
          throw reject(field, `${field} points at a private, loopback, link-local or reserved address (${address})`);
      }
    },
  };
}
