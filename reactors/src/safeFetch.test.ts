import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeFetch, ForbiddenAddressError } from './safeFetch.js';

/** A stand-in for command-side's AddressPolicy: loopback, IPv4-mapped and link-local are forbidden. */
const forbidLoopback = (address: string) =>
  /^(127\.|::1$|::ffff:|169\.254\.)/.test(address) ? 'loopback, IPv4-mapped or link-local' : undefined;
const allowAll = () => undefined;

let server: Server;
let port: number;
const hits: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/redirect') {
      res.writeHead(302, { location: `http://127.0.0.1:${port}/target` }).end();
      return;
    }
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const post = { method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: '{}' };

/** A resolver whose answer changes after registration: the DNS rebinding attack. */
function rebindingLookup(to: string) {
  return (
    _host: string,
    _opts: unknown,
    cb: (err: NodeJS.ErrnoException | null, a: { address: string; family: number }[]) => void,
  ) => cb(null, [{ address: to, family: to.includes(':') ? 6 : 4 }]);
}

describe('safe fetch (connect-time SSRF check)', () => {
  it('refuses a host that now resolves to loopback, before any request is sent', async () => {
    const safe = createSafeFetch({ forbiddenReason: forbidLoopback, lookup: rebindingLookup('127.0.0.1') });
    const before = hits.length;
    await expect(safe(`http://merchant.example:${port}/hook`, post)).rejects.toBeInstanceOf(ForbiddenAddressError);
    expect(hits.length).toBe(before);
    await safe.close();
  });

  it('refuses when any of several resolved addresses is forbidden', async () => {
    const lookup = (_h: string, _o: unknown, cb: (e: null, a: { address: string; family: number }[]) => void) =>
      cb(null, [
        { address: '93.184.215.14', family: 4 },
        { address: '169.254.169.254', family: 4 },
      ]);
    const safe = createSafeFetch({ forbiddenReason: forbidLoopback, lookup });
    await expect(safe('http://merchant.example/hook', post)).rejects.toThrow(/169\.254\.169\.254/);
    await safe.close();
  });

  it('refuses IP-literal hosts, which never reach a DNS lookup', async () => {
    const safe = createSafeFetch({ forbiddenReason: forbidLoopback });
    const before = hits.length;
    await expect(safe(`http://127.0.0.1:${port}/hook`, post)).rejects.toBeInstanceOf(ForbiddenAddressError);
    await expect(safe(`http://[::ffff:127.0.0.1]:${port}/hook`, post)).rejects.toBeInstanceOf(ForbiddenAddressError);
    expect(hits.length).toBe(before);
    await safe.close();
  });

  it('connects when the policy allows the address (the check is not vacuous)', async () => {
    const safe = createSafeFetch({ forbiddenReason: allowAll, lookup: rebindingLookup('127.0.0.1') });
    const res = await safe(`http://merchant.example:${port}/hook`, post);
    expect(res.status).toBe(204);
    expect(hits.at(-1)).toBe('/hook');
    await safe.close();
  });

  it('does not follow redirects', async () => {
    const safe = createSafeFetch({ forbiddenReason: allowAll });
    const res = await safe(`http://127.0.0.1:${port}/redirect`, post);
    expect(res.status).toBe(302);
    expect(hits).not.toContain('/target');
    await safe.close();
  });

  it('refuses non-http schemes', async () => {
    const safe = createSafeFetch({ forbiddenReason: allowAll });
    await expect(safe('file:///etc/passwd', post)).rejects.toThrow(/file:/);
    await safe.close();
  });
});
