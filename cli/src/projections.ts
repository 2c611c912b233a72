import { Command } from 'commander';
import { clientsEnv, type ClientsCommandEnv } from './clients.js';
import { isOperatorError, runProjectionRollback } from './rebuild.js';

/** One row of GraphQL `projections` (positions are strings there: they may exceed 2^31). */
export interface ProjectionStatusRow {
  name: string;
  version: number;
  state: string;
  position: string;
  headPosition: string;
  lagEvents: number;
  lagSeconds: number;
  parkedStreams: string[];
}

export const PROJECTIONS_QUERY =
  '{ projections { name version state position headPosition lagEvents lagSeconds parkedStreams } }';

export class OperatorApiError extends Error {
  /** The request never reached a Settle (refused, unknown host…): offline work cannot clash with one. */
  readonly unreachable: boolean;
  constructor(message: string, opts: { unreachable?: boolean } = {}) {
    super(message);
    this.unreachable = opts.unreachable ?? false;
  }
}

const describeCause = (error: unknown): string => {
  const cause = (error as Error).cause as { code?: string; message?: string } | undefined;
  return cause ? `: ${cause.code ?? cause.message ?? ''}` : '';
};

async function post(
  env: ClientsCommandEnv,
  path: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(`${env.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    // A timeout may mean a busy Settle that did act on the request; any other failure means the
    // request never reached one (nothing listens there), so falling back to offline work is safe.
    const name = (error as Error).name;
    if (name === 'TimeoutError' || name === 'AbortError')
      throw new OperatorApiError(`no answer from Settle at ${env.url} within 30 s (${path})`);
    throw new OperatorApiError(
      `cannot reach Settle at ${env.url}: ${(error as Error).message}${describeCause(error)} (set SETTLE_URL)`,
      { unreachable: true },
    );
  }
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    throw new OperatorApiError(`POST ${path}: ${res.status}: not JSON: ${text.slice(0, 200)}`);
  }
  return { status: res.status, json };
}

/**
 * One GraphQL operation as the operator SETTLE_CLIENT_ID (a token per call: operator commands are
 * rare). Throws OperatorApiError with each error's code and message.
 */
export async function operatorGraphQL<T>(
  env: ClientsCommandEnv,
  query: string,
  variables?: Record<string, unknown>,
): Promise<{ data: T; extensions?: Record<string, unknown> }> {
  const auth = await post(env, '/v1/auth/token', {
    grant_type: 'client_credentials',
    client_id: env.clientId,
    client_secret: env.clientSecret,
  });
  if (auth.status !== 200 || typeof auth.json.access_token !== 'string')
    throw new OperatorApiError(
      `token for ${env.clientId}: ${auth.status} ${String(auth.json.title ?? '')}: ${String(auth.json.detail ?? '')} (set SETTLE_CLIENT_ID / SETTLE_CLIENT_SECRET to an operator)`,
    );
  const res = await post(env, '/graphql', { query, ...(variables ? { variables } : {}) }, auth.json.access_token);
  const errors = res.json.errors as { message: string; extensions?: { code?: string } }[] | undefined;
  if (errors?.length)
    throw new OperatorApiError(errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('; '));
  const data = res.json.data as T | null | undefined;
  if (res.status !== 200 || !data) throw new OperatorApiError(`HTTP ${res.status}: no data`);
  const extensions = res.json.extensions as Record<string, unknown> | undefined;
  return { data, ...(extensions ? { extensions } : {}) };
}

/** `projections` of a running deployment, as the operator SETTLE_CLIENT_ID. */
export async function fetchProjectionStatus(env: ClientsCommandEnv = clientsEnv()): Promise<ProjectionStatusRow[]> {
  try {
    return (await operatorGraphQL<{ projections: ProjectionStatusRow[] }>(env, PROJECTIONS_QUERY)).data.projections;
  } catch (error) {
    if (error instanceof OperatorApiError && !/^(cannot reach|no answer|token)/.test(error.message))
      throw new OperatorApiError(`projections: ${error.message}`);
    throw error;
  }
}

/** A plain-text table, one projection a line. */
export function formatProjectionTable(rows: ProjectionStatusRow[]): string {
  const header = ['NAME', 'VERSION', 'STATE', 'POSITION', 'HEAD', 'LAG EVENTS', 'LAG SECONDS', 'PARKED'];
  const body = rows.map((r) => [
    r.name,
    String(r.version),
    r.state,
    r.position,
    r.headPosition,
    String(r.lagEvents),
    r.lagSeconds.toFixed(r.lagSeconds === 0 ? 0 : 1),
    String(r.parkedStreams.length),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const numeric = new Set([1, 3, 4, 5, 6, 7]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const parked = rows.flatMap((r) => r.parkedStreams.map((s) => `  parked in ${r.name}: ${s}`));
  return [line(header), ...body.map(line), ...parked].join('\n');
}

/** `settle projections status`: the operator view of a running deployment. */
export function projectionsCommand(): Command {
  const command = new Command('projections').description(
    'projections of a running Settle (SETTLE_URL, SETTLE_CLIENT_ID, SETTLE_CLIENT_SECRET; development defaults: http://127.0.0.1:3000, demo-operator, demo-secret)',
  );
  command
    .command('status')
    .description('position, head, lag in events and seconds, parked streams of each projection')
    .action(async () => {
      try {
        console.log(formatProjectionTable(await fetchProjectionStatus()));
      } catch (error) {
        if (!(error instanceof OperatorApiError)) throw error;
        console.error(`settle projections status: ${error.message}`);
        process.exitCode = 1;
      }
    });
  command
    .command('rollback')
    .argument('<name>', 'projection: requests, merchantStats or preferences')
    .option('--offline', 'do not ask a running Settle: switch the pointer in the configured read store (MongoDB)')
    .description(
      'switch back to the previous version of a projection (the one live before the last rebuild); it catches up from its checkpoint',
    )
    .action(async (name: string, opts: { offline?: boolean }) => {
      try {
        await runProjectionRollback({ projection: name, ...(opts.offline ? { offline: true } : {}) });
      } catch (error) {
        const kind = isOperatorError(error) ? '' : `${(error as Error).name}: `;
        console.error(`settle projections rollback: ${kind}${(error as Error).message}`);
        process.exitCode = 1;
      }
    });
  return command;
}
