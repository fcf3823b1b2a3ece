/**
 * An in-process TCP proxy between the code under test and a real server (PostgreSQL, the broker),
 * owned by one test, that can "blackhole" the network: while blackholed it forwards no
 * byte in either direction and closes nothing, like a link that drops every packet.
 * New connections are accepted but not forwarded either. Two ways to heal:
 *
 * - `heal('resume')`: TCP retransmits, so the held bytes and closes are delivered and
 *   the connections go on;
 * - `heal('lost')` (default): the connections of before stay silent forever (a firewall
 *   or NAT that lost their state, a server that gave up on them: nothing tells the
 *   client), while new connections work. Only a client that gives up on a silent
 *   connection and opens a new one recovers.
 */
import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Bytes and ends held while blackholed, in order, per direction. */
  held: { toUpstream: (Buffer | null)[]; toClient: (Buffer | null)[] };
  /** Lost by `heal('lost')`: nothing is forwarded or closed any more. */
  lost: boolean;
}

export class TcpProxy {
  /** Client connections accepted (a reconnect shows up here, blackholed or not). */
  accepted = 0;
  /** Upstream connections opened (one per client connection that reached the server). */
  connectionsOpened = 0;
  private blackholed = false;
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const server = net.createServer();
    const proxy = new TcpProxy(server, { host: targetHost, port: targetPort });
    server.on('connection', (socket) => proxy.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Stop forwarding (see the file comment). */
  blackhole(): void {
    this.blackholed = true;
  }

  /** Forward again (see the file comment for the two modes). */
  heal(mode: 'resume' | 'lost' = 'lost'): void {
    this.blackholed = false;
    for (const pair of [...this.pairs]) {
      if (mode === 'lost') {
        pair.lost = true;
        pair.held.toUpstream = [];
        pair.held.toClient = [];
        continue;
      }
      if (!pair.upstream && (pair.client.destroyed || pair.held.toUpstream.includes(null))) {
        // The client gave up before its connection ever reached the server.
        pair.client.destroy();
        this.pairs.delete(pair);
        continue;
      }
      if (!pair.upstream) this.connectUpstream(pair);
      this.flush(pair);
    }
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const pair: Pair = { client, upstream: undefined, held: { toUpstream: [], toClient: [] }, lost: false };
    this.pairs.add(pair);
    client.on('error', () => undefined);
    client.on('data', (chunk) => this.forward(pair, 'toUpstream', chunk));
    client.on('end', () => this.forward(pair, 'toUpstream', null));
    client.on('close', () => this.closeLater(pair, 'toUpstream'));
    if (!this.blackholed) this.connectUpstream(pair);
  }

  private connectUpstream(pair: Pair): void {
    const upstream = net.connect(this.target.port, this.target.host);
    pair.upstream = upstream;
    this.connectionsOpened++;
    upstream.on('error', () => undefined);
    upstream.on('data', (chunk) => this.forward(pair, 'toClient', chunk));
    upstream.on('end', () => this.forward(pair, 'toClient', null));
    upstream.on('close', () => this.closeLater(pair, 'toClient'));
    this.flush(pair);
  }

  /** A side that closed: its end is delivered like its bytes (held while blackholed). */
  private closeLater(pair: Pair, direction: 'toUpstream' | 'toClient'): void {
    this.forward(pair, direction, null);
  }

  private forward(pair: Pair, direction: 'toUpstream' | 'toClient', chunk: Buffer | null): void {
    if (pair.lost) return;
    pair.held[direction].push(chunk);
    if (!this.blackholed) this.flush(pair);
  }

  private flush(pair: Pair): void {
    if (this.blackholed) return;
    const deliver = (direction: 'toUpstream' | 'toClient', to: net.Socket | undefined) => {
      if (!to) return;
      for (const chunk of pair.held[direction].splice(0)) {
        if (chunk === null) {
          to.end();
          if (pair.client.destroyed || pair.upstream?.destroyed) this.pairs.delete(pair);
        } else if (!to.destroyed) {
          to.write(chunk);
        }
      }
    };
    deliver('toUpstream', pair.upstream);
    deliver('toClient', pair.client);
  }
}
