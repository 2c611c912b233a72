import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { partsEnv } from './parts.js';

/** The repository root (this file runs from features/dist/support). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const OUTPUT_LIMIT = 256 * 1024;
// A fresh data directory is initialised on first start (PGlite), which takes a while on a busy machine.
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
/** Timeout for a step (or hook) that starts Settle. */
export const START_TIMEOUT_MS = READY_TIMEOUT_MS + 30_000;

/** A port nothing listens on right now: bind port 0 on loopback, read it, close. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Ports {
  http: number;
  grpc: number;
  sandbox: number;
}

async function freePorts(): Promise<Ports> {
  const ports = new Set<number>();
  while (ports.size < 3) ports.add(await freePort());
  const [http, grpc, sandbox] = [...ports] as [number, number, number];
  return { http, grpc, sandbox };
}

/** Node 24 from the `node` devDependency, as `npm start` runs it; the test runner's own Node otherwise. */
export function nodeBinary(): string {
  const local = join(REPO_ROOT, 'node_modules', '.bin', 'node');
  return existsSync(local) ? local : process.execPath;
}

/**
 * One `settle start` process, started exactly as a user starts it, on its own data directory
 * and free ports. Its stdout and stderr are kept so a failing scenario can show them.
 */
export class SettleProcess {
  private child?: ChildProcess;
  private exited?: Promise<number | null>;
  private output = '';
  /** Offset into `output` a scenario started at, so a failure prints only what it caused. */
  private mark = 0;

  private constructor(
    readonly name: string,
    readonly dataDir: string,
    readonly ports: Ports,
    private readonly ownsDataDir: boolean,
    /** Extra SETTLE_* settings of this instance (kept across restarts). */
    private readonly extraEnv: Record<string, string> = {},
  ) {}

  /** Starts Settle on a fresh data directory (or `dataDir`, to start it again on stored state) and waits until it is ready. */
  static async start(
    name: string,
    opts: { dataDir?: string; ports?: Ports; env?: Record<string, string> } = {},
  ): Promise<SettleProcess> {
    const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), `settle-features-${name}-`)));
    const app = new SettleProcess(
      name,
      dataDir,
      opts.ports ?? (await freePorts()),
      opts.dataDir === undefined,
      opts.env ?? {},
    );
    await app.launch();
    return app;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.ports.http}/graphql`;
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.ports.grpc}`;
  }

  get sandboxUrl(): string {
    return `http://127.0.0.1:${this.ports.sandbox}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private async launch(): Promise<void> {
    // The developer's own SETTLE_* settings must not leak into a test instance.
    const env: NodeJS.ProcessEnv = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('SETTLE_')),
    );
    Object.assign(env, {
      SETTLE_DATA_DIR: this.dataDir,
      SETTLE_HTTP_PORT: String(this.ports.http),
      SETTLE_GRPC_PORT: String(this.ports.grpc),
      SETTLE_SANDBOX_PORT: String(this.ports.sandbox),
      SETTLE_LOG_LEVEL: 'warn',
      ...(await partsEnv(this.dataDir)),
      ...this.extraEnv,
    });
    this.output += `--- ${new Date().toISOString()} settle start (${this.name}, data ${this.dataDir}, http ${this.ports.http}, grpc ${this.ports.grpc}, sandbox ${this.ports.sandbox})\n`;
    const child = spawn(nodeBinary(), [join(REPO_ROOT, 'cli', 'bin', 'settle.js'), 'start'], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (chunk: Buffer) => {
      this.output += chunk.toString();
      if (this.output.length > OUTPUT_LIMIT) {
        const cut = this.output.length - OUTPUT_LIMIT;
        this.output = this.output.slice(cut);
        this.mark = Math.max(0, this.mark - cut);
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.output += `--- settle exited (code ${code}, signal ${signal})\n`;
        resolve(code);
      });
      child.once('error', (error) => {
        this.output += `--- could not run settle: ${error.message}\n`;
        resolve(null);
      });
    });
    await this.waitUntilReady();
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`Settle (${this.name}) exited before it was ready:\n${this.output}`);
      try {
        const res = await fetch(`${this.httpUrl}/health/ready`, { signal: AbortSignal.timeout(2_000) });
        last = `${res.status} ${await res.text()}`;
        if (res.status === 200) return;
      } catch (error) {
        last = (error as Error).message;
      }
      await sleep(100);
    }
    const output = this.output;
    await this.kill();
    throw new Error(
      `Settle (${this.name}) was not ready within ${READY_TIMEOUT_MS} ms (last /health/ready: ${last}):\n${output}`,
    );
  }

  /** Ctrl-C: SIGINT, then wait for the process to exit on its own. Resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (!this.running) return this.child?.exitCode ?? null;
    this.child!.kill('SIGINT');
    const code = await Promise.race([this.exited!, sleep(STOP_TIMEOUT_MS).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      await this.kill();
      throw new Error(`Settle (${this.name}) did not exit within ${STOP_TIMEOUT_MS} ms of SIGINT`);
    }
    return code;
  }

  /** kill -9: no chance to flush anything. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** Starts Settle again on the same data directory and ports (after stop() or kill()). */
  async restart(): Promise<void> {
    if (this.running) throw new Error('stop or kill Settle before starting it again');
    await this.launch();
  }

  markScenarioStart(): void {
    this.mark = this.output.length;
  }

  outputSinceMark(): string {
    return this.output.slice(this.mark);
  }

  /** Stops the process if it still runs and removes a data directory it created. */
  async dispose(): Promise<void> {
    try {
      await this.stop();
    } finally {
      if (this.ownsDataDir) await rm(this.dataDir, { recursive: true, force: true });
    }
  }
}
