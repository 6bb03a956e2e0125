// One HTTP/1.1 request on its own connection, written byte for byte (no client-side validation or normalisation),
// so the fuzzer can send what a browser or undici would refuse to.
import { connect } from 'node:net'
import type { FuzzRequest } from './fuzz.js'

export interface RawResponse {
  status: number
  headers: Record<string, string | string[]>
  body: Buffer
}

function dechunk (body: Buffer): Buffer {
  const parts: Buffer[] = []
  let at = 0
  while (at < body.length) {
    const lineEnd = body.indexOf('\r\n', at)
    if (lineEnd === -1) break
    const size = parseInt(body.toString('latin1', at, lineEnd), 16)
    if (!Number.isFinite(size) || size === 0) break
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size))
    at = lineEnd + 2 + size + 2
  }
  return Buffer.concat(parts)
}

export function parseResponse (raw: Buffer): RawResponse {
  const headEnd = raw.indexOf('\r\n\r\n')
  if (headEnd === -1) throw new Error(`incomplete response (${raw.length} bytes)`)
  const [statusLine, ...lines] = raw.toString('latin1', 0, headEnd).split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? Number.NaN)
  const headers: Record<string, string | string[]> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    const seen = headers[name]
    headers[name] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]
  }
  let body = raw.subarray(headEnd + 4)
  if (String(headers['transfer-encoding'] ?? '').includes('chunked')) body = dechunk(body)
  return { status, headers, body }
}

export async function rawRequest (port: number, request: FuzzRequest, timeoutMs = 10_000): Promise<RawResponse> {
  const head = `${request.method} ${request.target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
    request.headers.map(([name, value]) => `${name}: ${value}\r\n`).join('') + 'Connection: close\r\n\r\n'
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete answer within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', (err) => {
      clearTimeout(timer)
      // The server may answer (e.g. 431) and close before reading all we sent: a reset after a full answer is fine.
      const raw = Buffer.concat(chunks)
      if (raw.includes('\r\n\r\n')) resolve(parseResponse(raw))
      else reject(err)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      try {
        resolve(parseResponse(Buffer.concat(chunks)))
      } catch (err) {
        reject(err)
      }
    })
    // Not end(): a server that sees the client's FIN before it answers may drop the response.
    socket.write(Buffer.from(head, 'latin1'))
  })
}
