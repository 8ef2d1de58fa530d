/**
 * A loopback TCP proxy that can freeze one client's requests on their way to the server, as a
 * process paused with SIGSTOP would: what the client sends after the freeze waits in the proxy,
 * and reaches the server, in order, only on thaw. Replies flow back unchanged.
 */
import net from 'node:net';

export interface FreezingProxy {
  readonly port: number;
  /** Freezes the next request whose bytes contain `marker` (and everything after it) until thaw(). */
  freezeAt(marker: string): Promise<void>;
  thaw(): void;
  close(): Promise<void>;
}

export async function startFreezingProxy(target: { host: string; port: number }): Promise<FreezingProxy> {
  const sockets = new Set<net.Socket>();
  let marker: string | undefined;
  let onFrozen: (() => void) | undefined;
  let frozen = false;
  const held: Array<() => void> = [];

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (!frozen && marker !== undefined && chunk.includes(marker)) {
        frozen = true;
        marker = undefined;
        onFrozen?.();
      }
      if (frozen) held.push(() => upstream.write(chunk));
      else upstream.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    freezeAt: (text) =>
      new Promise<void>((resolve) => {
        marker = text;
        onFrozen = resolve;
      }),
    thaw: () => {
      frozen = false;
      for (const send of held.splice(0)) send();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
