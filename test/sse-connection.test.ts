// SseConnection on its own, over a real socket: the guard that keeps a
// second end() from writing after the end, and its byte count.
import { createServer, get, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { HEARTBEAT } from '../src/sse/frame.js'
import { SseConnection } from '../src/sse/sse-connection.js'
import { deferred } from './fixtures/sse-client.js'

t.test('end() twice sends the first last frame only, and reports no loss', async (t) => {
  const lost: unknown[] = []
  const served = deferred<ServerResponse>()
  const server = createServer((_request, res) => { served.resolve(res) })
  t.teardown(() => server.close())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const response = fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
  const connection = new SseConnection(await served.promise, { heartbeatMs: 0, headers: {}, owner: { connectionLost: (c) => { lost.push(c) } } })
  t.equal(connection.open(), true)
  connection.push('data: 1\n\n')
  connection.end('data: last\n\n')
  connection.end('data: again\n\n')
  t.equal(await (await response).text(), 'data: 1\n\ndata: last\n\n')
  await connection.done
  t.same(lost, [])
})

t.test('countBytes(): the UTF-8 bytes of every frame written (a flush, a 16 KB push, the last frame), not of heartbeats', async (t) => {
  const served = deferred<ServerResponse>()
  const server = createServer((_request, res) => { served.resolve(res) })
  t.teardown(() => server.close())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  let body = ''
  const heartbeat = deferred<void>()
  const ended = deferred<void>()
  get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, (res) => {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      body += chunk
      if (body.includes(HEARTBEAT)) heartbeat.resolve()
    })
    res.on('end', () => { ended.resolve() })
  })
  const connection = new SseConnection(await served.promise, { heartbeatMs: 20, headers: {}, owner: { connectionLost: () => {} } })
  const counter = { bytes: 0 }
  connection.countBytes(counter)
  t.equal(connection.open(), true)
  connection.push('data: "größe ✓"\n\n')
  await heartbeat.promise
  connection.push(`data: "${'é'.repeat(16 * 1024)}"\n\n`)
  connection.end('data: "last 🏁"\n\n')
  await ended.promise
  const frames = body.split(HEARTBEAT).join('')
  t.equal(frames, `data: "größe ✓"\n\ndata: "${'é'.repeat(16 * 1024)}"\n\ndata: "last 🏁"\n\n`)
  t.equal(counter.bytes, Buffer.byteLength(frames))
})
