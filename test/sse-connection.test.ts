// SseConnection on its own, over a real socket: the guard that keeps a
// second end() from writing after the end.
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
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
