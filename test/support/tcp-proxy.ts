/**
 * A TCP proxy a test owns, between the worker and the shared broker, that can blackhole:
 * stop forwarding in both directions without closing anything, as a dead link or a
 * firewall that drops packets does. Neither side sees a FIN or RST; only heartbeats can
 * tell. A connection that lived through a blackhole stays dead after `heal` (its bytes
 * were lost, as a real link's would be); new connections forward again.
 */
import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  dead: boolean;
}

export class BlackholeProxy {
  private readonly pairs = new Set<Pair>();
  private holed = false;
  /** Connections accepted so far (a reconnect shows up here). */
  accepted = 0;

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<BlackholeProxy> {
    const server = net.createServer();
    const proxy = new BlackholeProxy(server, target);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Stops forwarding: every current connection is dead from now on, new ones too until {@link heal}. */
  blackhole(): void {
    this.holed = true;
    for (const p of this.pairs) p.dead = true;
  }

  /** New connections forward again; the ones that lived through the blackhole stay dead. */
  heal(): void {
    this.holed = false;
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const upstream = net.connect(this.target.port, this.target.host);
    const pair: Pair = { client, upstream, dead: this.holed };
    this.pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (!pair.dead) to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      // A dead link delivers no FIN either: the other side must find out by itself (the
      // pair stays in the set so that close() still ends it).
      if (pair.dead) return;
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      s.on('close', end);
    }
  }
}
