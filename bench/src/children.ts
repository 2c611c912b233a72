import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { procCpuSeconds, sleep } from './measure.js';
import { HttpClient } from './httpClient.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The environment without the developer's own SETTLE_* settings: each child gets exactly ours. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SETTLE_')) env[k] = v;
  return { ...env, ...extra };
}

export interface Child {
  readonly pid: number;
  readonly url: string;
  readonly logFile: string;
  /** CPU seconds the child has used so far. */
  cpuSeconds(): number;
  /** Waits until the child uses less than `busy` of a core for `quietMs` (its backlog drained), at most `maxMs`. */
  quiesce(opts?: { busy?: number; quietMs?: number; maxMs?: number }): Promise<boolean>;
  stop(): Promise<void>;
}

/** Every child this run started and that is still running: stopped at the end whatever happened. */
const live = new Set<Child>();

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop()));
}

function track(child: ChildProcess, url: string, logFile: string): Child {
  let exited = child.exitCode !== null || child.signalCode !== null;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      live.delete(tracked);
      resolve();
    }),
  );
  const pid = child.pid!;
  const tracked: Child = {
    pid,
    url,
    logFile,
    cpuSeconds: () => procCpuSeconds(pid) ?? 0,
    async quiesce({ busy = 0.15, quietMs = 1000, maxMs = 30_000 } = {}) {
      const deadline = Date.now() + maxMs;
      let quietSince = Date.now();
      let last = procCpuSeconds(pid) ?? 0;
      while (Date.now() < deadline && !exited) {
        await sleep(250);
        const cpu = procCpuSeconds(pid) ?? 0;
        if (cpu - last > busy * 0.25) quietSince = Date.now();
        else if (Date.now() - quietSince >= quietMs) return true;
        last = cpu;
      }
      return false;
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      // Settle on Kafka may take a while (the forwarder waits for its last acknowledgement).
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exit;
      clearTimeout(timer);
    },
  };
  if (!exited) live.add(tracked);
  return tracked;
}

async function waitFor(url: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const http = new HttpClient(url, 1);
  let exitCode: number | null = null;
  child.once('exit', (code) => (exitCode = code ?? -1));
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      if (exitCode !== null) throw new StartError(await lastLogLine(logFile), exitCode);
      try {
        const res = await http.request('GET', '/health/ready');
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    throw new StartError(`not ready after ${timeoutMs} ms; ${await lastLogLine(logFile)}`, null);
  } finally {
    http.close();
  }
}

/** The child could not start; `message` is the reason it logged. */
export class StartError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
  ) {
    super(message);
    this.name = 'StartError';
  }
}

/** The most telling line of a child's log: its fatal message if any, else its last line. */
async function lastLogLine(logFile: string): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const lines = text.split('\n').filter(Boolean);
  for (const line of [...lines].reverse()) {
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      if ((entry.level ?? 0) >= 50 && entry.msg) return entry.msg;
    } catch {
      if (/error/i.test(line)) return line;
    }
  }
  return lines[lines.length - 1] ?? 'no output';
}

/**
 * Starts the all-in-one Settle (`settle start`, every role) as a child process on free ports,
 * with a fresh data dir, and waits until it is ready (projections caught up).
 */
export async function startSettleChild(opts: {
  dataDir: string;
  env?: Record<string, string>;
  cpuProfile?: { dir: string; name: string };
  /** How long readiness may take (default 90 s; a long log to project takes longer). */
  readyTimeoutMs?: number;
}): Promise<Child> {
  const [http, grpc, sandbox] = [await freePort(), await freePort(), await freePort()];
  const logFile = join(opts.dataDir, 'settle.log');
  const log = createWriteStream(logFile);
  const profile = opts.cpuProfile
    ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfile.dir}`, `--cpu-prof-name=${opts.cpuProfile.name}`]
    : [];
  const args = [...profile, join(REPO_ROOT, 'cli/bin/settle.js'), 'start'];
  const child = spawn(process.execPath, args, {
    cwd: opts.dataDir,
    env: cleanEnv({
      SETTLE_DATA_DIR: opts.dataDir,
      SETTLE_HTTP_PORT: String(http),
      SETTLE_GRPC_PORT: String(grpc),
      SETTLE_SANDBOX_PORT: String(sandbox),
      SETTLE_LOG_LEVEL: 'warn',
      SETTLE_LOG_FORMAT: 'json',
      ...opts.env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const url = `http://127.0.0.1:${http}`;
  const tracked = track(child, url, logFile);
  try {
    await waitFor(url, child, logFile, opts.readyTimeoutMs ?? 90_000);
  } catch (error) {
    await tracked.stop();
    throw error;
  }
  return tracked;
}

/** Starts the bare fastify limit (bareServer.js) as a child process, like Settle is. */
export async function startBareChild(logDir: string): Promise<Child> {
  const port = await freePort();
  const logFile = join(logDir, 'bare.log');
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [fileURLToPath(new URL('./bareServer.js', import.meta.url)), String(port)], {
    cwd: logDir,
    env: cleanEnv({}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const url = `http://127.0.0.1:${port}`;
  const tracked = track(child, url, logFile);
  try {
    await waitFor(url, child, logFile, 30_000);
  } catch (error) {
    await tracked.stop();
    throw error;
  }
  return tracked;
}

/** A client-credentials access token for the demo merchant. */
export async function demoToken(url: string): Promise<string> {
  const http = new HttpClient(url, 1);
  try {
    const res = await http.request('POST', '/v1/auth/token', {
      grant_type: 'client_credentials',
      client_id: 'demo-merchant',
      client_secret: 'demo-secret',
    });
    const token = (res.json as { access_token?: string } | undefined)?.access_token;
    if (res.status !== 200 || !token)
      throw new Error(`token endpoint answered ${res.status}: ${res.text.slice(0, 200)}`);
    return token;
  } finally {
    http.close();
  }
}
