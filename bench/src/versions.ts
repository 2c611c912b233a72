import { MongoClient } from 'mongodb';
import pg from 'pg';
import type { Ctx } from './context.js';
import { SERVICES } from './services.js';

/** What each real server is, for the machine facts beside the table. */
export async function serverVersions(ctx: Ctx): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (!(await ctx.problem('postgres'))) {
    const c = new pg.Client({ connectionString: SERVICES.postgres });
    try {
      await c.connect();
      const v = (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?';
      const settings = (
        await c.query<{ name: string; setting: string }>(
          "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers') ORDER BY name",
        )
      ).rows
        .map((r) => `${r.name}=${r.setting}`)
        .join(', ');
      out.postgres = `PostgreSQL ${v} (${settings})`;
    } catch (error) {
      out.postgres = `unreadable (${(error as Error).message})`;
    } finally {
      await c.end().catch(() => undefined);
    }
  } else out.postgres = 'unavailable';
  if (!(await ctx.problem('mongo'))) {
    const m = new MongoClient(SERVICES.mongo, { serverSelectionTimeoutMS: 3000, socketTimeoutMS: 5000 });
    try {
      await m.connect();
      const info = (await m.db('admin').command({ buildInfo: 1 })) as {
        version?: string;
        ferretdb?: { version?: string };
      };
      const hello = (await m
        .db('admin')
        .command({ hello: 1 })
        .catch(() => ({}))) as Record<string, unknown>;
      const ferret = info.ferretdb?.version ?? (typeof hello.ferretdb === 'object' ? 'FerretDB' : undefined);
      out.mongo = `MongoDB wire ${info.version ?? '?'}${ferret ? ` (${ferret})` : ''}`;
    } catch (error) {
      out.mongo = `unreadable (${(error as Error).message})`;
    } finally {
      await m.close().catch(() => undefined);
    }
  } else out.mongo = 'unavailable';
  out.kafka = (await ctx.problem('kafka')) ? 'unavailable' : `Kafka at ${SERVICES.kafka.join(',')}`;
  return out;
}
