import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERR_PORT_IN_USE, startSettle } from './start.js';
import { embeddedTestEnv, freePort } from './testing/processes.js';

describe('start-up on a port that is taken', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'settle-port-in-use-'));
  let taken: Server;
  let port = 0;

  beforeAll(async () => {
    port = await freePort();
    taken = createServer();
    await new Promise<void>((ok) => taken.listen(port, '127.0.0.1', ok));
  });

  afterAll(async () => {
    await new Promise((ok) => taken.close(ok));
    rmSync(dataDir, { recursive: true, force: true });
  });

  const env = (overrides: Record<string, string>) => embeddedTestEnv(dataDir, overrides);

  it.each([
    ['SETTLE_HTTP_PORT', ['projector'] as const],
    ['SETTLE_GRPC_PORT', ['payments'] as const],
    ['SETTLE_SANDBOX_PORT', ['sandbox'] as const],
  ])(
    'fails naming %s, and stops what it had started',
    async (setting, roles) => {
      const failure = startSettle({ roles: [...roles], env: await env({ [setting]: String(port) }) });
      await expect(failure).rejects.toMatchObject({
        code: ERR_PORT_IN_USE,
        message: expect.stringContaining(`${setting}=${port}: the port is already in use`),
      });
      // Nothing left holding the data dir: the next start on it works.
      const settle = await startSettle({ roles: ['projector'], env: await env({}) });
      await settle.stop();
    },
    60_000,
  );
});
