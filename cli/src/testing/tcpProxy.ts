import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a private loopback port in front of a shared server, so a spec can cut a part
 * off from one process (`cut()`: every connection dropped, new ones refused) and give it back
 * (`restore()`) without stopping the server other helpers and specs use. Nothing here is imported
 * by the product.
 */
export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, port: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = () =>
    new Promise<void>((ok, fail) => {
      const s = createServer((client) => {
        const upstream = connect(target.port, target.host);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.pipe(upstream).pipe(client);
      });
      s.once('error', fail);
      s.listen(port, '127.0.0.1', () => {
        server = s;
        ok();
      });
    });
  const stop = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (s) await new Promise<void>((ok) => s.close(() => ok()));
  };
  await listen();
  return {
    port,
    cut: stop,
    async restore() {
      if (!server) await listen();
    },
    close: stop,
  };
}
