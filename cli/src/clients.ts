import { Command, Option } from 'commander';

/** Where and as whom `settle clients` talks to a running deployment. */
export interface ClientsCommandEnv {
  url: string;
  clientId: string;
  clientSecret: string;
}

export function clientsEnv(env: Record<string, string | undefined> = process.env): ClientsCommandEnv {
  return {
    url: (env.SETTLE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, ''),
    clientId: env.SETTLE_CLIENT_ID || 'demo-operator',
    clientSecret: env.SETTLE_CLIENT_SECRET || 'demo-secret',
  };
}

interface ClientView {
  id: string;
  name: string;
  roles: string[];
  merchantId?: string;
  disabled: boolean;
  client_secret?: string;
  webhook_secret?: string;
}

class ApiError extends Error {}

async function call<T>(
  env: ClientsCommandEnv,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${env.url}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    throw new ApiError(`cannot reach Settle at ${env.url}: ${(error as Error).message} (set SETTLE_URL)`);
  }
  const text = await res.text();
  const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok)
    throw new ApiError(`${method} ${path}: ${res.status} ${String(json.title ?? '')}: ${String(json.detail ?? text)}`);
  return json as T;
}

async function login(env: ClientsCommandEnv): Promise<string> {
  const pair = await call<{ access_token: string }>(env, 'POST', '/v1/auth/token', {
    grant_type: 'client_credentials',
    client_id: env.clientId,
    client_secret: env.clientSecret,
  });
  return pair.access_token;
}

function run(action: (env: ClientsCommandEnv, token: string) => Promise<void>) {
  return async () => {
    const env = clientsEnv();
    try {
      await action(env, await login(env));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      console.error(`settle clients: ${error.message}`);
      process.exitCode = 1;
    }
  };
}

/**
 * `settle clients create|list|disable`: manages API clients of a running deployment through its
 * admin endpoints, as SETTLE_CLIENT_ID (an admin) at SETTLE_URL.
 */
export function clientsCommand(): Command {
  const command = new Command('clients').description(
    'manage API clients of a running Settle (SETTLE_URL, SETTLE_CLIENT_ID, SETTLE_CLIENT_SECRET; development defaults: http://127.0.0.1:3000, demo-operator, demo-secret)',
  );

  command
    .command('create')
    .description('create a client; prints its client secret and webhook secret, which are shown only this once')
    .requiredOption('--name <name>', 'display name')
    .addOption(
      new Option('--roles <roles>', 'comma-separated roles: merchant, operator, admin, service').default('merchant'),
    )
    .option('--id <id>', 'client id (default: generated)')
    .option('--merchant-id <id>', 'merchant id of a merchant client (default: its client id)')
    .option('--json', 'print JSON')
    .action(async (opts: { name: string; roles: string; id?: string; merchantId?: string; json?: boolean }) =>
      run(async (env, token) => {
        const created = await call<ClientView>(
          env,
          'POST',
          '/v1/clients',
          {
            name: opts.name,
            roles: opts.roles
              .split(',')
              .map((r) => r.trim())
              .filter(Boolean),
            ...(opts.id ? { id: opts.id } : {}),
            ...(opts.merchantId ? { merchantId: opts.merchantId } : {}),
          },
          token,
        );
        if (opts.json) return console.log(JSON.stringify(created, null, 2));
        console.log(`created client ${created.id} (${created.roles.join(', ')})`);
        console.log(`  client_secret:  ${created.client_secret}`);
        if (created.webhook_secret) console.log(`  webhook_secret: ${created.webhook_secret}`);
        console.log(
          'Store these secrets now: Settle keeps only a hash (and the webhook secret encrypted) and cannot show them again.',
        );
      })(),
    );

  command
    .command('list')
    .description('list clients (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) =>
      run(async (env, token) => {
        const { clients } = await call<{ clients: ClientView[] }>(env, 'GET', '/v1/clients', undefined, token);
        if (opts.json) return console.log(JSON.stringify(clients, null, 2));
        console.log(`${'ID'.padEnd(28)} ${'ROLES'.padEnd(24)} ${'STATUS'.padEnd(9)} NAME`);
        for (const c of clients)
          console.log(
            `${c.id.padEnd(28)} ${c.roles.join(',').padEnd(24)} ${(c.disabled ? 'disabled' : 'enabled').padEnd(9)} ${c.name}`,
          );
      })(),
    );

  command
    .command('disable')
    .description('disable a client: its tokens stop working at once, and it can no longer log in')
    .argument('<id>', 'client id')
    .option('--reason <reason>', 'why (kept in the event)')
    .action(async (id: string, opts: { reason?: string }) =>
      run(async (env, token) => {
        const client = await call<ClientView>(
          env,
          'POST',
          `/v1/clients/${encodeURIComponent(id)}/disable`,
          opts.reason ? { reason: opts.reason } : {},
          token,
        );
        console.log(`client ${client.id} is disabled`);
      })(),
    );

  return command;
}
