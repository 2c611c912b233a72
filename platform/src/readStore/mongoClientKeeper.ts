import { MongoClient, type Db, type MongoClientOptions } from 'mongodb';
import type { Logger } from '../logger.js';

export interface MongoClientKeeperOptions {
  /**
   * A server-monitor heartbeat in flight for longer than this, or none ending for
   * `heartbeatFrequencyMS` plus this, means the driver's monitor is stuck: the client is replaced.
   * Default: twice `connectTimeoutMS` (a heartbeat's connect plus its hello) plus 5 s.
   */
  stallMs?: number;
  /** How often the monitor is looked at (default 1 s). */
  checkEveryMs?: number;
  logger?: Logger;
}

/**
 * Holds the read store's `MongoClient` and replaces it when the driver's server monitor is stuck,
 * which the driver never recovers from on its own.
 *
 * Why (mongodb 7.9.0, found in the FerretDB outage spec, `cli/src/outages.int.test.ts`): the
 * monitor checks a server on its own connection, and decides whether that connection is still
 * usable from a flag set only by the socket's `close` event. Node destroys a socket whose peer
 * closed it first and emits `close` later, after the handle is closed; a check that runs in
 * between (an application connection lost at the same moment makes every waiting operation ask
 * for one at once) writes its `hello` to the destroyed socket, where `write()` returns false and
 * neither `drain`, `error` nor a timeout ever follows. That check never ends, the monitor stays
 * "monitoring" and never checks again, so the server stays Unknown with the error that marked it
 * so: every operation then fails server selection with the same stale `connection N to … closed`
 * against a server that answers everyone else. When FerretDB stops it closes every connection at
 * once, which is what made the race likely on a busy machine.
 *
 * The cure is a new client (the supported way to rebuild the topology): the old one is closed once
 * its in-flight operations have had `socketTimeoutMS` to finish.
 */
export class MongoClientKeeper {
  private current: MongoClient;
  /** When the current client's in-flight heartbeat started (undefined: none in flight). */
  private heartbeatStartedAt: number | undefined;
  private lastHeartbeatEndedAt = Date.now();
  /** Whether the current client has connected (a topology that monitors). */
  private connected: boolean;
  private connecting: Promise<void> | undefined;
  private failedConnects = 0;
  private readonly retiring = new Map<MongoClient, NodeJS.Timeout>();
  private readonly timer: NodeJS.Timeout;
  private readonly stallMs: number;
  private closed = false;
  /** How many times the client was replaced (tests, diagnostics). */
  replacements = 0;

  constructor(
    private readonly url: string,
    private readonly clientOptions: MongoClientOptions,
    /** A client already connected with `clientOptions`. */
    client: MongoClient,
    private readonly opts: MongoClientKeeperOptions = {},
  ) {
    this.stallMs = opts.stallMs ?? 2 * (clientOptions.connectTimeoutMS ?? 30_000) + 5000;
    this.current = client;
    this.connected = true;
    this.watch(client);
    this.timer = setInterval(() => this.check(), opts.checkEveryMs ?? 1000);
    this.timer.unref();
  }

  get client(): MongoClient {
    return this.current;
  }

  db(name: string): Db {
    return this.current.db(name);
  }

  private watch(client: MongoClient): void {
    client.on('serverHeartbeatStarted', () => {
      if (client === this.current) this.heartbeatStartedAt = Date.now();
    });
    const ended = () => {
      if (client !== this.current) return;
      this.heartbeatStartedAt = undefined;
      this.lastHeartbeatEndedAt = Date.now();
    };
    client.on('serverHeartbeatSucceeded', ended);
    client.on('serverHeartbeatFailed', ended);
  }

  /** The monitor's state, if stuck: why. */
  private stuck(now: number): string | undefined {
    if (!this.connected) return undefined;
    if (this.heartbeatStartedAt !== undefined && now - this.heartbeatStartedAt > this.stallMs)
      return `a heartbeat started ${now - this.heartbeatStartedAt} ms ago never ended`;
    const every = this.current.options.heartbeatFrequencyMS ?? 10_000;
    if (this.heartbeatStartedAt === undefined && now - this.lastHeartbeatEndedAt > every + this.stallMs)
      return `no heartbeat for ${now - this.lastHeartbeatEndedAt} ms (every ${every} ms expected)`;
    return undefined;
  }

  private check(): void {
    if (this.closed) return;
    const why = this.stuck(Date.now());
    if (why) this.replace(why);
    else if (!this.connected) this.connect();
  }

  private replace(why: string): void {
    const old = this.current;
    this.opts.logger?.warn(
      { reason: why, replacements: this.replacements + 1 },
      "read store: the MongoDB driver's server monitor is stuck (it would never find the server again); replacing the client",
    );
    const client = new MongoClient(this.url, this.clientOptions);
    this.current = client;
    this.replacements++;
    this.heartbeatStartedAt = undefined;
    this.lastHeartbeatEndedAt = Date.now();
    this.connected = false;
    this.connecting = undefined;
    this.failedConnects = 0;
    this.watch(client);
    this.connect();
    // Operations already running on the old client get their socket timeout to finish.
    const grace = this.clientOptions.socketTimeoutMS || 30_000;
    const retire = setTimeout(() => {
      this.retiring.delete(old);
      void old.close().catch(() => undefined);
    }, grace);
    retire.unref();
    this.retiring.set(old, retire);
  }

  /** Connects the current client (again, while the server is down); operations would too, on demand. */
  private connect(): void {
    if (this.connecting || this.connected) return;
    const client = this.current;
    this.connecting = client.connect().then(
      () => {
        if (client !== this.current) return;
        this.connected = true;
        this.connecting = undefined;
        this.failedConnects = 0;
        this.lastHeartbeatEndedAt = Date.now();
        this.opts.logger?.info('read store: new MongoDB client connected');
      },
      (error: unknown) => {
        if (client !== this.current) return;
        this.connecting = undefined;
        // Once per new client: the server may be down for a while yet, and readiness says so anyway.
        if (this.failedConnects++ === 0)
          this.opts.logger?.warn({ err: error }, 'read store: new MongoDB client not connected yet; trying again');
      },
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const clients = [...this.retiring.keys()];
    for (const t of this.retiring.values()) clearTimeout(t);
    this.retiring.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await this.current.close();
  }
}
