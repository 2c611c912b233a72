import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { REDACT_PATHS } from '@settle/platform';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing.js';

describe('transport and hygiene', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('sends security headers on API answers, problems included', async () => {
    t = await createTestApp();
    for (const url of ['/.well-known/jwks.json', '/v1/requests/x', '/no-such-route']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  }, 120_000);

  it('keeps Swagger UI working at /docs under its own same-origin CSP', async () => {
    t = await createTestApp();
    const res = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(res.statusCode).toBe(200);
    // Swagger UI's own policy: its scripts come from this origin only, its images may be data: URLs.
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain("img-src 'self' data: validator.swagger.io");
    expect(csp).toMatch(/script-src 'self'/);
    expect(csp).not.toMatch(/unsafe-(eval|inline)/);
    for (const src of res.body.match(/src="\.\/[^"]+"/g) ?? []) {
      const asset = await t.app.inject({ method: 'GET', url: `/docs/${src.slice(7, -1)}` });
      expect(asset.statusCode, src).toBe(200);
    }
  });

  it('answers CORS only for configured origins', async () => {
    t = await createTestApp({ http: { corsOrigins: ['https://dashboard.example'] } });
    const preflight = (origin: string) =>
      t!.app.inject({
        method: 'OPTIONS',
        url: '/v1/requests',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
    const allowed = await preflight('https://dashboard.example');
    expect(allowed.headers['access-control-allow-origin']).toBe('https://dashboard.example');
    expect(allowed.headers['access-control-allow-headers']).toContain('authorization');
    expect((await preflight('https://evil.example')).headers['access-control-allow-origin']).toBeUndefined();
  });

  it('sends no CORS headers by default', async () => {
    t = await createTestApp();
    const res = await t.app.inject({
      method: 'GET',
      url: '/.well-known/jwks.json',
      headers: { origin: 'https://evil.example' },
    });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('serves HTTPS from a certificate and key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'settle-tls-'));
    const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
      ],
      { stdio: 'ignore' },
    );
    t = await createTestApp({ http: { https: { cert: readFileSync(cert), key: readFileSync(key) } } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (t.app.server.address() as { port: number }).port;
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port, path: '/.well-known/jwks.json', ca: readFileSync(cert), servername: 'localhost' },
        (res) => {
          let data = '';
          res.on('data', (c) => (data += c));
          res.on('end', () => resolve(data));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(body).keys).toHaveLength(1);
  });

  it('never writes a client secret, refresh token or bearer token to the logs', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = pino({ level: 'trace', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
    t = await createTestApp({ logger });
    const pair = await t.token('demo-merchant');
    await t.app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      payload: { grant_type: 'client_credentials', client_id: 'demo-merchant', client_secret: 'wrong-secret-0001' },
    });
    await t.app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials&client_id=demo-merchant&client_secret=wrong-secret-0002',
    });
    await t.app.inject({
      method: 'POST',
      url: '/v1/auth/token',
      payload: { grant_type: 'refresh_token', refresh_token: pair.refresh_token },
    });
    await t.app.inject({
      method: 'GET',
      url: '/v1/clients',
      headers: { authorization: `Bearer ${pair.access_token}` },
    });
    // What a careless handler might log: redaction still holds.
    logger.info(
      {
        body: { client_secret: 'wrong-secret-0003', refresh_token: pair.refresh_token },
        req: { headers: { authorization: `Bearer ${pair.access_token}` } },
      },
      'careless',
    );
    const log = lines.join('');
    expect(log).toContain('careless');
    expect(log.length).toBeGreaterThan(1000);
    for (const secret of [
      'demo-secret',
      'wrong-secret-0001',
      'wrong-secret-0002',
      'wrong-secret-0003',
      pair.refresh_token,
      pair.access_token,
    ])
      expect(log).not.toContain(secret);
  });
});
