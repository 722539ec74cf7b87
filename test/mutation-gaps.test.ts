// Gaps found by mutation: each test here fails under one deliberate breakage
// of src/ that the rest of the suite let through, and passes on the real code.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { frames, sseApp } from './fixtures/sse-app.js'
import { listen, openSse, within } from './fixtures/sse-client.js'

// Breakage: EventStreamWriter#flush no longer re-arms the heartbeat timer, so
// a busy stream gets a `:` comment every heartbeatMs, silent or not.
t.test('heartbeat: a stream whose frames keep coming gets no : comments', async (t) => {
  // Two gaps of 0.6 x heartbeatMs: together longer than heartbeatMs, each
  // shorter. Node runs timers in order of due time, so even on a stalled
  // machine the source's sleep (due first) and the flush it leads to run
  // before the heartbeat that the previous flush re-armed.
  const heartbeatMs = 200
  const { app } = await sseApp(t)
  app.get('/s', (_request, reply) => reply.eventStream(async function * () {
    yield 1
    await sleep(heartbeatMs * 0.6)
    yield 2
    await sleep(heartbeatMs * 0.6)
    yield 3
  }, { streamId: 'busy', heartbeatMs }))
  const port = await listen(app)
  const client = await openSse(port, '/s')
  const body = await within(client.ended, 'the end of the stream')
  t.equal(client.parser.comments, 0, 'no heartbeat while frames flow')
  t.equal(body, frames('busy', [
    { type: 'start', streamId: 'busy' },
    { type: 'progress', data: 1 },
    { type: 'progress', data: 2 },
    { type: 'progress', data: 3 },
    { type: 'complete' },
  ]))
})
