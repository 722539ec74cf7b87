import { request } from 'node:http'
import t from 'tap'
import Fastify from 'fastify'
import { fastifyCqrsStream } from '../src/index.js'
import { eventually, listen, within } from './fixtures/sse-client.js'

t.test('app.close() does not wait forever for a client that stopped reading', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, { closeTimeoutMs: 200, heartbeatMs: 0 })
  let pulled = 0
  let stopped = false
  const chunk = 'x'.repeat(64 * 1024)
  let response: { destroyed: boolean } | undefined
  app.get('/big', (_request, reply) => {
    response = reply.raw
    return reply.eventStream(source())
  })
  async function * source (): AsyncGenerator<string> {
    try {
      for (;;) {
        pulled++
        yield chunk
      }
    } finally {
      stopped = true
    }
  }
  const port = await listen(app)

  const req = request({ port, host: '127.0.0.1', path: '/big' }, (res) => {
    res.pause() // never reads: the server's buffers fill and stay full
  })
  req.on('error', () => {}) // the server resets the connection
  req.end()
  // The writer stops pulling once the socket is full; wait until it has.
  await eventually(() => pulled > 0, 'the first item')
  let last = -1
  await eventually(() => {
    const settled = pulled === last
    last = pulled
    return settled && pulled > 1
  }, 'the writer to stop pulling', 10_000)

  await within(app.close(), 'app.close() with a client that reads nothing', 10_000)
  t.ok(stopped, 'the source was stopped')
  // A paused client cannot see the reset; the server's side shows it.
  await eventually(() => response?.destroyed === true, 'the slow client\'s response to be destroyed')
  req.destroy()
})
