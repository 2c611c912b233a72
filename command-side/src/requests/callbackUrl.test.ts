import { describe, expect, it } from 'vitest';
import { HttpProblem } from '../errors.js';
import { createAddressPolicy, forbiddenRangeOf, parseAddress, parseCidr } from './addressPolicy.js';
import { createCallbackUrlPolicy } from './callbackUrl.js';

const FORBIDDEN: [string, string][] = [
  ['0.0.0.0', 'this network'],
  ['10.1.2.3', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.169.254', 'link-local'],
  ['100.64.0.1', 'carrier-grade NAT'],
  ['100.127.255.255', 'carrier-grade NAT'],
  ['192.0.0.8', 'IETF'],
  ['192.0.2.1', 'documentation'],
  ['198.18.0.1', 'benchmarking'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['192.88.99.1', '6to4 relay'],
  ['224.0.0.251', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['::a9fe:a9fe', 'IPv4-compatible'],
  ['::ffff:a9fe:a9fe', 'IPv4-mapped'],
  ['::ffff:169.254.169.254', 'IPv4-mapped'],
  ['::ffff:8.8.8.8', 'IPv4-mapped'],
  ['::ffff:0:a00:1', 'IPv4-translated'],
  ['64:ff9b::a9fe:a9fe', 'NAT64'],
  ['64:ff9b::8.8.8.8', 'NAT64'],
  ['64:ff9b:1::1', 'NAT64'],
  ['100::1', 'discard'],
  ['2001::1', 'Teredo'],
  ['2001:db8::1', 'documentation'],
  ['2002:a9fe:a9fe::1', '6to4'],
  ['2002:0808:0808::', '6to4'],
  ['3fff::1', 'documentation'],
  ['fc00::1', 'ULA'],
  ['fd00::1', 'ULA'],
  ['fdff:ffff::1', 'ULA'],
  ['fe80::1', 'link-local'],
  ['febf::1', 'link-local'],
  ['fec0::1', 'site-local'],
  ['ff02::1', 'multicast'],
  ['ff0e::1', 'multicast'],
  ['4000::1', 'not global unicast'],
  ['5f00::1', 'SRv6'],
];

const PUBLIC = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.215.14',
  '100.63.255.255',
  '100.128.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '169.253.255.255',
  '223.255.255.255',
  '2606:4700:4700::1111',
  '2a00:1450:4001:80e::200e',
  '2001:4860:4860::8888',
];

describe('forbidden address ranges', () => {
  it.each(FORBIDDEN)('%s is forbidden (%s)', (address, label) => {
    expect(forbiddenRangeOf(address)).toContain(label);
  });

  it.each(PUBLIC)('%s is a public address and allowed', (address) => {
    expect(forbiddenRangeOf(address)).toBeUndefined();
  });

  it('compares families separately: the IPv4-mapped range does not swallow plain IPv4 (node BlockList does)', () => {
    expect(forbiddenRangeOf('8.8.8.8')).toBeUndefined();
    expect(forbiddenRangeOf('::ffff:8.8.8.8')).toContain('IPv4-mapped');
  });

  it('parses every IPv6 spelling to the same number', () => {
    const a = parseAddress('::ffff:a9fe:a9fe');
    expect(parseAddress('::ffff:169.254.169.254')).toEqual(a);
    expect(parseAddress('0:0:0:0:0:FFFF:A9FE:A9FE')).toEqual(a);
    expect(parseAddress('fe80::1%eth0')).toBeUndefined();
    expect(parseAddress('not-an-ip')).toBeUndefined();
  });

  it('parses CIDRs strictly', () => {
    expect(parseCidr('10.0.0.0/8')).toMatchObject({ family: 4, prefix: 8 });
    expect(parseCidr('fd00::/8')).toMatchObject({ family: 6, prefix: 8 });
    expect(parseCidr('10.1.2.3')).toMatchObject({ prefix: 32 });
    for (const bad of ['10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/8/9', 'example.com/8', 'fd00::/129', '10.0.0.0/ 8'])
      expect(() => parseCidr(bad)).toThrow();
  });

  it('lets an allowlist open a private range, and only that range', () => {
    const policy = createAddressPolicy({ allowLoopback: false, allowlist: ['10.20.0.0/16', 'fd12:3456::/32'] });
    expect(policy.forbiddenReason('10.20.1.2')).toBeUndefined();
    expect(policy.forbiddenReason('fd12:3456::9')).toBeUndefined();
    expect(policy.forbiddenReason('10.21.0.1')).toContain('private');
    expect(policy.forbiddenReason('::ffff:10.20.1.2')).toContain('IPv4-mapped');
    expect(policy.forbiddenReason('169.254.169.254')).toContain('link-local');
  });

  it('allows loopback in development and nothing else private', () => {
    const dev = createAddressPolicy({ allowLoopback: true });
    expect(dev.forbiddenReason('127.0.0.1')).toBeUndefined();
    expect(dev.forbiddenReason('::1')).toBeUndefined();
    for (const [address] of FORBIDDEN.filter(([, label]) => label !== 'loopback'))
      expect(dev.forbiddenReason(address)).toBeDefined();
  });
});

async function refusal(check: Promise<void>): Promise<HttpProblem> {
  try {
    await check;
  } catch (error) {
    expect(error).toBeInstanceOf(HttpProblem);
    return error as HttpProblem;
  }
  throw new Error('the URL was accepted');
}

describe('callback URL policy', () => {
  const dns: Record<string, string[]> = {
    'merchant.example': ['93.184.215.14'],
    'dual.example': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    'sneaky.example': ['93.184.215.14', '10.0.0.5'],
    'metadata.example': ['169.254.169.254'],
    'mapped.example': ['::ffff:127.0.0.1'],
    localhost: ['127.0.0.1', '::1'],
    'internal.corp': ['10.20.3.4'],
  };
  const resolve = async (host: string) => {
    const hit = dns[host];
    if (!hit) throw new Error('ENOTFOUND');
    return hit;
  };
  const dev = createCallbackUrlPolicy({ production: false, resolve });
  const prod = createCallbackUrlPolicy({ production: true, resolve });

  it.each([
    'http://169.254.169.254/',
    'http://10.1.2.3/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://100.64.0.1/',
    'http://[fd00::1]/',
    'http://[fe80::1]/',
    'http://[2002:a9fe:a9fe::]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://[::ffff:127.0.0.1]/',
    'http://0xa9.0xfe.0xa9.0xfe/',
    'http://2852039166/',
    'http://224.0.0.1/',
    'http://0.0.0.0/',
    'http://[::]/',
    'http://metadata.example/',
    'http://sneaky.example/',
    'http://mapped.example/',
  ])('%s is refused with 422 naming callbackUrl, even in development', async (url) => {
    for (const policy of [dev, prod]) {
      const problem = await refusal(policy.check(url, 'callbackUrl'));
      expect(problem.statusCode).toBe(422);
      expect(problem.field).toBe('callbackUrl');
    }
  });

  it('refuses public IP literals: callbacks name a host', async () => {
    expect((await refusal(prod.check('https://93.184.215.14/hook', 'callbackUrl'))).message).toContain(
      'not an IP address',
    );
    expect((await refusal(dev.check('http://[2606:4700:4700::1111]/', 'callbackUrl'))).message).toContain(
      'not an IP address',
    );
  });

  it('accepts public hosts; production wants https', async () => {
    await prod.check('https://merchant.example/hooks/settle', 'callbackUrl');
    await prod.check('https://dual.example:8443/x?y=1', 'callbackUrl');
    await dev.check('http://merchant.example/hooks', 'callbackUrl');
    expect((await refusal(prod.check('http://merchant.example/hooks', 'callbackUrl'))).message).toContain('https');
  });

  it('allows loopback in development only', async () => {
    await dev.check('http://127.0.0.1:4567/hook', 'callbackUrl');
    await dev.check('http://[::1]:4567/hook', 'callbackUrl');
    await dev.check('http://localhost:4567/hook', 'callbackUrl');
    await refusal(prod.check('https://localhost/hook', 'callbackUrl'));
    await refusal(prod.check('https://127.0.0.1/hook', 'callbackUrl'));
  });

  it('refuses other schemes, credentials, unresolvable hosts and garbage', async () => {
    for (const url of [
      'ftp://merchant.example/',
      'file:///etc/passwd',
      'gopher://merchant.example/',
      'javascript:alert(1)',
      'https://user:pw@merchant.example/',
      'https://nowhere.invalid/',
      'not a url',
      '//merchant.example/',
    ])
      expect((await refusal(dev.check(url, 'callbackUrl'))).statusCode).toBe(422);
  });

  it('opens allowlisted ranges, for names and literals', async () => {
    const internal = createCallbackUrlPolicy({ production: true, resolve, allowlist: ['10.20.0.0/16'] });
    await internal.check('https://internal.corp/hook', 'callbackUrl');
    await internal.check('https://10.20.9.9/hook', 'callbackUrl');
    await refusal(internal.check('https://10.1.2.3/hook', 'callbackUrl'));
    await refusal(internal.check('https://metadata.example/hook', 'callbackUrl'));
    await refusal(prod.check('https://internal.corp/hook', 'callbackUrl'));
  });
});
