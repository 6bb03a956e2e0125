// A TCP proxy on loopback that holds every chunk, in both directions, for `delayMs` before passing it on (in order).
// Put between an app and its Redis, it makes the Redis slow without making it fail.
import { once } from 'node:events'
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net'

export class DelayProxy {
  /** Added to every chunk from now on; 0 passes chunks through at once. */
  delayMs = 0
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()

  constructor (private readonly targetPort: number, private readonly targetHost = '127.0.0.1') {}

  async listen (): Promise<number> {
    const server = createServer((client) => this.connect(client))
    this.server = server
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return (server.address() as AddressInfo).port
  }

  private pipe (from: Socket, to: Socket): void {
    let lastAt = 0
    let pending = 0
    let ended = false
    from.on('data', (chunk: Buffer) => {
      const at = Math.max(Date.now() + this.delayMs, lastAt)
      lastAt = at
      const wait = at - Date.now()
      if (wait <= 0 && pending === 0) {
        to.write(chunk)
        return
      }
      pending++
      setTimeout(() => {
        pending--
        if (!to.destroyed) to.write(chunk)
        if (pending === 0 && ended) to.end()
      }, Math.max(0, wait))
    })
    from.on('end', () => {
      ended = true
      if (pending === 0) to.end()
    })
  }

  private connect (client: Socket): void {
    const upstream = createConnection({ port: this.targetPort, host: this.targetHost })
    for (const socket of [client, upstream]) {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    this.pipe(client, upstream)
    this.pipe(upstream, client)
  }

  async close (): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    if (this.server === undefined) return
    const closed = once(this.server, 'close')
    this.server.close()
    await closed
  }
}
