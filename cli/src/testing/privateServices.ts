import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, REPO_ROOT } from './processes.js';

/**
 * A private set of the local servers (PostgreSQL, Redis, Kafka, FerretDB) on free ports with its
 * own state dir, started with `infra/local/services` (SETTLE_LOCAL_STATE and SETTLE_*_PORT), for
 * specs that stop and start servers: the shared set (`infra/local/services up`) that other specs
 * and processes use is never touched. Nothing here is imported by the product.
 */
export type ServiceName = 'postgres' | 'redis' | 'kafka' | 'ferretdb';

export interface PrivateServices {
  /** State dir (data, logs) of this set. */
  stateDir: string;
  /** The SETTLE_* variables that make `infra/local/services` act on this set. */
  env: Record<string, string>;
  urls: { pgAdmin: string; kafka: string; mongo: string; redis: string };
  up(service?: ServiceName): Promise<void>;
  down(service?: ServiceName): Promise<void>;
  /** Stops every server of the set and removes its state dir. */
  destroy(): Promise<void>;
}

export async function runServices(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const child = spawn(join(REPO_ROOT, 'infra/local/services'), args, {
    cwd: REPO_ROOT,
    env: { ...(process.env as Record<string, string>), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number>((r) => child.once('exit', (c) => r(c ?? 1)));
  return { code, output };
}

/** Starts a private set (about 15 s: initdb, Kafka storage format and start). */
export async function startPrivateServices(name: string): Promise<PrivateServices> {
  const stateDir = mkdtempSync(join(tmpdir(), `settle-services-${name}-`));
  // The postgres user must reach its data dir inside.
  chmodSync(stateDir, 0o755);
  const [pg, redis, kafka, controller, mongo] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const env = {
    SETTLE_LOCAL_STATE: stateDir,
    SETTLE_PG_PORT: String(pg),
    SETTLE_REDIS_PORT: String(redis),
    SETTLE_KAFKA_PORT: String(kafka),
    SETTLE_KAFKA_CONTROLLER_PORT: String(controller),
    SETTLE_MONGO_PORT: String(mongo),
    // A smaller Kafka heap than the shared one's; on a busy machine Kafka takes a while to start.
    SETTLE_KAFKA_HEAP_OPTS: '-Xmx384m -Xms128m',
    SETTLE_TIMEOUT_KAFKA: '180',
    // FerretDB stores in this set's PostgreSQL, as the shared one does (so a PostgreSQL outage is
    // a read store outage too); SETTLE_TEST_FERRETDB_BACKEND=sqlite gives it its own files.
    SETTLE_FERRETDB_BACKEND: process.env.SETTLE_TEST_FERRETDB_BACKEND ?? 'postgresql',
  };
  const run = async (command: 'up' | 'down', service?: ServiceName) => {
    const r = await runServices(service ? [command, service] : [command], env);
    if (r.code !== 0)
      throw new Error(
        `infra/local/services ${command} ${service ?? ''} (private set ${stateDir}) failed:\n${r.output}`,
      );
  };
  const set: PrivateServices = {
    stateDir,
    env,
    urls: {
      pgAdmin: `postgres://settle:settle@127.0.0.1:${pg}/settle`,
      kafka: `kafka://127.0.0.1:${kafka}`,
      mongo: `mongodb://127.0.0.1:${mongo}`,
      redis: `redis://127.0.0.1:${redis}`,
    },
    up: (service) => run('up', service),
    down: (service) => run('down', service),
    async destroy() {
      await run('down').catch((error: unknown) => console.error((error as Error).message));
      if (!process.env.SETTLE_TEST_KEEP) rmSync(stateDir, { recursive: true, force: true });
    },
  };
  try {
    await set.up();
  } catch (error) {
    await set.destroy();
    throw error;
  }
  return set;
}
