// Reconnects: a request with Last-Event-ID never runs a command again; on a
// resumable route it gets exactly the frames it missed, then live ones.
// Real sockets throughout: a dropped connection is what is under test.
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { frames } from './fixtures/sse-app.js'
import { eventually, listen, openSse, startStreamId, type SseClient } from './fixtures/sse-client.js'
import { TicksCommand, ticksApp } from './fixtures/ticks-app.js'
import { InMemoryStreamStore, type StoredFrame } from '../src/index.js'

const tick = (n: number): unknown => ({ type: 'progress', data: { n } })
const COMPLETE = { type: 'complete' }

/** The start frame of a resumable stream: a retry hint and its cancel url. */
function resumableStart (streamId: string, base = '/ticks'): string {
  return `id: ${streamId}:0\nretry: 1000\ndata: ${JSON.stringify({ type: 'start', streamId, cancelUrl: `${base}/${streamId}` })}\n\n`
}

/** The client leaves; resolves once the server has seen its socket close. */
async function dropped (client: SseClient, app?: FastifyInstance): Promise<void> {
  client.destroy()
  await client.ended.catch(() => {})
  if (app === undefined) return
  let open = 1
  await eventually(() => {
    app.server.getConnections((_error, count) => { open = count })
    return open === 0
  }, 'the server to see the connection close')
}

t.test('without resume, a reconnect gets 204 and never runs the command', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand })
  for (const headers of [{ 'last-event-id': 'abc:3' }, { 'last-event-id': '' }, { 'last-event-id': 'garbage' }]) {
    const res = await app.inject({ url: '/ticks?count=2', headers })
    t.equal(res.statusCode, 204, `Last-Event-ID ${JSON.stringify(headers['last-event-id'])}`)
    t.equal(res.body, '')
  }
  // The query parameter is taken out before validation: this schema forbids extra properties.
  const res = await app.inject({ url: '/ticks?count=2&lastEventId=abc:3' })
  t.equal(res.statusCode, 204)
  t.equal(pacer.runs, 0, 'the handler never ran')
  const fresh = await app.inject({ url: '/ticks?count=1' })
  t.equal(fresh.statusCode, 200, 'a request without an id still runs')
  t.equal(pacer.runs, 1)
})

t.test('a dropped client resumes with Last-Event-ID: missed frames exactly once, then live ones', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, response: undefined, resume: true })
  const port = await listen(app)
  pacer.hold()
  pacer.release(2)
  const first = await openSse(port, '/ticks?count=6')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 3, 'start and two ticks')
  t.equal(first.body(), resumableStart(streamId) + frames(streamId, [tick(0), tick(1)], 1))
  await dropped(first)

  pacer.release(2)
  await eventually(() => pacer.yielded === 4, 'two ticks produced while nobody listens')
  const second = await openSse(port, '/ticks?count=6', { headers: { 'last-event-id': `${streamId}:2` } })
  t.equal(second.status, 200)
  t.equal(second.headers['content-type'], 'text/event-stream; charset=utf-8')
  await second.until(() => second.parser.frames.length === 2, 'the two missed ticks')
  pacer.release()
  const body = await second.ended
  t.equal(body, frames(streamId, [tick(2), tick(3), tick(4), tick(5), COMPLETE], 3), 'no frame repeated or skipped')
  t.same({ runs: pacer.runs, aborts: pacer.aborts, finished: pacer.finished }, { runs: 1, aborts: 0, finished: 1 })

  const after = await app.inject({ url: '/ticks?count=6', headers: { 'last-event-id': `${streamId}:7` } })
  t.equal(after.statusCode, 204, 'a reconnect after the last frame gets 204')
  const late = await app.inject({ url: '/ticks?count=6', headers: { 'last-event-id': `${streamId}:5` } })
  t.equal(late.statusCode, 200)
  t.equal(late.body, frames(streamId, [tick(5), COMPLETE], 6), 'a late reconnect gets the kept tail')
  t.equal(pacer.runs, 1, 'no reconnect ran the command again')
})

t.test('the lastEventId query parameter resumes like the header', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  const port = await listen(app)
  pacer.hold()
  pacer.release(1)
  const first = await openSse(port, '/ticks?count=2')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 2, 'start and one tick')
  await dropped(first)
  const second = await openSse(port, `/ticks?count=2&lastEventId=${encodeURIComponent(`${streamId}:1`)}`)
  pacer.release()
  t.equal(await second.ended, frames(streamId, [tick(1), COMPLETE], 2))
  t.equal(pacer.runs, 1)
})

t.test('POST streams resume too, with the command sent again', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, resume: { windowMs: 5000 } })
  const port = await listen(app)
  pacer.hold()
  pacer.release(1)
  const body = JSON.stringify({ count: 3 })
  const first = await openSse(port, '/ticks', { method: 'POST', body })
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 2, 'start and one tick')
  await dropped(first)
  const second = await openSse(port, '/ticks', { method: 'POST', body, headers: { 'last-event-id': `${streamId}:1` } })
  pacer.release()
  t.equal(await second.ended, frames(streamId, [tick(1), tick(2), COMPLETE], 2))
  t.equal(pacer.runs, 1)
})

t.test('no reconnect within windowMs aborts the handler; the stream is then gone', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: { windowMs: 50 } })
  const port = await listen(app)
  pacer.hold()
  const first = await openSse(port, '/ticks?count=3')
  const streamId = await startStreamId(first)
  await dropped(first)
  t.equal(pacer.aborts, 0, 'still running right after the drop')
  await eventually(() => pacer.aborts === 1 && pacer.finished === 1, 'the abort after the window')
  const res = await app.inject({ url: '/ticks?count=3', headers: { 'last-event-id': `${streamId}:0` } })
  t.equal(res.statusCode, 204)
  t.equal(pacer.runs, 1)
})

t.test('a full buffer while the client is away aborts the handler', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: { maxBufferedFrames: 3 } })
  const port = await listen(app)
  pacer.hold()
  const first = await openSse(port, '/ticks?count=100')
  const streamId = await startStreamId(first)
  await dropped(first, app)
  pacer.release()
  await eventually(() => pacer.aborts === 1 && pacer.finished === 1, 'the abort on a full buffer')
  t.equal(pacer.yielded, 3, 'it stopped at the third frame produced while away')
  const res = await app.inject({ url: '/ticks?count=100', headers: { 'last-event-id': `${streamId}:0` } })
  t.equal(res.statusCode, 204, 'the aborted stream cannot be resumed')
})

t.test('frames no longer kept, an id never sent, or a foreign stream get 204', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: { maxBufferedFrames: 3 } })
  app.streamRoute({ method: 'POST', url: '/other', request: TicksCommand, resume: true })
  const done = await app.inject({ url: '/ticks?count=10' })
  const streamId = (JSON.parse(done.body.split('\n')[2]!.slice(6)) as { streamId: string }).streamId
  const resume = (id: string, url = '/ticks?count=10'): Promise<number> =>
    app.inject({ url, headers: { 'last-event-id': id } }).then((res) => res.statusCode)
  t.equal(await resume(`${streamId}:2`), 204, 'frame 3 was dropped from the buffer: resuming would skip it')
  t.equal(await resume(`${streamId}:9`), 200, 'the kept tail is still there')
  t.equal(await resume(`${streamId}:99`), 204, 'an id beyond the stream')
  t.equal(await resume(`${streamId}:-1`), 204, 'a malformed seq')
  t.equal(await resume(`${streamId}:01`), 204, 'a seq with a leading zero')
  t.equal(await resume(':4'), 204, 'no stream id')
  t.equal(await resume('unknown:1'), 204, 'an unknown stream')
  t.equal((await app.inject({ method: 'POST', url: '/other', payload: { count: 1 }, headers: { 'last-event-id': `${streamId}:9` } })).statusCode, 204, 'a stream of another route')
  t.equal(pacer.runs, 1)
})

t.test('a reconnect while the old connection is still open takes the stream over', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  const port = await listen(app)
  pacer.hold()
  pacer.release(1)
  const first = await openSse(port, '/ticks?count=3')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 2, 'start and one tick')
  const beyond = await app.inject({ url: '/ticks?count=3', headers: { 'last-event-id': `${streamId}:5` } })
  t.equal(beyond.statusCode, 204, 'an id the running stream has not sent yet')
  const second = await openSse(port, '/ticks?count=3', { headers: { 'last-event-id': `${streamId}:1` } })
  await t.rejects(first.ended, 'the old connection is dropped')
  pacer.release()
  t.equal(await second.ended, frames(streamId, [tick(1), tick(2), COMPLETE], 2))
  t.equal(pacer.runs, 1)
})

t.test('DELETE <url>/:streamId cancels a resumable stream', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks/', request: TicksCommand, resume: true })
  const port = await listen(app)
  pacer.hold()
  const client = await openSse(port, '/ticks/?count=3')
  const streamId = await startStreamId(client)
  t.equal(client.parser.frames[0]!.data, JSON.stringify({ type: 'start', streamId, cancelUrl: `/ticks/${streamId}` }), 'no double slash')
  const cancel = await app.inject({ method: 'DELETE', url: `/ticks/${streamId}` })
  t.equal(cancel.statusCode, 204)
  const error = { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_CANCELLED', message: 'fastify-cqrs-stream: the stream was cancelled by its client.' } }
  t.equal(await client.ended, resumableStart(streamId) + frames(streamId, [error], 1))
  await eventually(() => pacer.aborts === 1 && pacer.finished === 1, 'the handler aborted')
  t.equal((await app.inject({ method: 'DELETE', url: `/ticks/${streamId}` })).statusCode, 204, 'cancelling an ended stream is a no-op')
  const unknown = await app.inject({ method: 'DELETE', url: '/ticks/nope' })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'FST_ERR_CQRS_STREAM_NOT_FOUND')
})

t.test('a GET and a POST route on one url share the cancel route and their streams', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, resume: true })
  const port = await listen(app)
  pacer.hold()
  const client = await openSse(port, '/ticks', { method: 'POST', body: JSON.stringify({ count: 2 }) })
  const streamId = await startStreamId(client)
  t.equal((await app.inject({ method: 'DELETE', url: `/ticks/${streamId}` })).statusCode, 204)
  await client.ended
  await eventually(() => pacer.aborts === 1, 'the handler aborted')
})

t.test('a stream cancelled while its client is away tells the returning client', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  const port = await listen(app)
  pacer.hold()
  const first = await openSse(port, '/ticks?count=3')
  const streamId = await startStreamId(first)
  await dropped(first)
  t.equal((await app.inject({ method: 'DELETE', url: `/ticks/${streamId}` })).statusCode, 204)
  await eventually(() => pacer.aborts === 1, 'the handler aborted')
  const back = await app.inject({ url: '/ticks?count=3', headers: { 'last-event-id': `${streamId}:0` } })
  t.equal(back.statusCode, 200)
  t.match(JSON.parse(back.body.split('\n')[1]!.slice(6)), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_CANCELLED' } })
})

t.test('app.close() aborts streams waiting for their client', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  const port = await listen(app)
  pacer.hold()
  const first = await openSse(port, '/ticks?count=3')
  await startStreamId(first)
  await dropped(first, app)
  await app.close()
  t.equal(pacer.aborts, 1)
  t.equal(pacer.finished, 1)
})

t.test('a failing store is logged and the stream goes on without resume', async (t) => {
  class BrokenStore extends InMemoryStreamStore {
    override append (_streamId: string, _frame: StoredFrame): Promise<void> {
      return Promise.reject(new Error('store down'))
    }
  }
  const warnings: string[] = []
  const { app, pacer } = await ticksApp(t, { streamStore: new BrokenStore() })
  app.addHook('onRequest', async (request) => {
    const log = request.log
    log.warn = ((object: { err: Error }, message: string) => { warnings.push(`${message}: ${object.err.message}`) }) as typeof log.warn
  })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  const res = await app.inject({ url: '/ticks?count=2' })
  t.equal(res.statusCode, 200)
  t.match(res.body, /"type":"complete"/)
  t.equal(pacer.runs, 1)
  await eventually(() => warnings.length > 0, 'a warning')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(warnings, ['fastify-cqrs-stream: the stream store failed; this stream goes on without resume: store down'], 'one warning per stream, not per frame')
  const streamId = /"streamId":"([^"]+)"/.exec(res.body)![1]
  const again = await app.inject({ url: '/ticks?count=2', headers: { 'last-event-id': `${streamId}:1` } })
  t.equal(again.statusCode, 204, 'nothing to resume from')
})

t.test('after a store failure, a client that drops aborts the handler at once: nobody could resume', async (t) => {
  class BrokenStore extends InMemoryStreamStore {
    override append (_streamId: string, _frame: StoredFrame): Promise<void> {
      return Promise.reject(new Error('store down'))
    }
  }
  const { app, pacer } = await ticksApp(t, { streamStore: new BrokenStore(), logger: { warn () {}, error () {} } })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: { windowMs: 60_000 } })
  const port = await listen(app)
  pacer.hold()
  pacer.release(1)
  const client = await openSse(port, '/ticks?count=5')
  await client.until(() => client.parser.frames.length === 2, 'start and a tick')
  await dropped(client)
  await eventually(() => pacer.aborts === 1, 'the handler aborted long before the window ends')
})

t.test('resume, twoStep and streamStore options are checked', async (t) => {
  const { app } = await ticksApp(t)
  const bad = [
    [{ resume: { windowMs: 0 } }, 'resume.windowMs'],
    [{ resume: { maxBufferedFrames: 1.5 } }, 'resume.maxBufferedFrames'],
    [{ resume: 'yes' }, 'resume'],
    [{ method: 'POST', twoStep: { claimTimeoutMs: -1 } }, 'twoStep.claimTimeoutMs'],
    [{ method: 'POST', twoStep: null }, 'twoStep'],
  ] as const
  for (const [options, name] of bad) {
    t.throws(() => app.streamRoute({ method: 'GET', url: '/x', request: TicksCommand, ...options as object }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: new RegExp(name.replace('.', '\\.')) })
  }
  t.throws(() => app.streamRoute({ method: 'GET', url: '/x', request: TicksCommand, twoStep: true }), { code: 'FST_ERR_CQRS_STREAM_INVALID_ROUTE' })
  await t.rejects(ticksApp(t, { streamStore: { open () {} } as never }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /streamStore/ })
  // A shared store written for 0.1 (no putCommand/takeCommand) is refused, not taken silently as an unshared one.
  const old = new InMemoryStreamStore() as unknown as Record<string, unknown>
  Object.assign(old, { follow () {}, signal () {}, onSignal () {} })
  await t.rejects(ticksApp(t, { streamStore: old as never }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /putCommand and takeCommand/ })
})

// A stream belongs to its url, not to the method that started it: a page
// that started it with fetch (POST, a body) resumes it after a reload with
// EventSource, which can only GET. The reconnect is validated like any
// request (the command in the query string), and never runs it.
t.test('across methods: a GET with lastEventId resumes a stream a POST to the same url started', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, resume: true })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  app.streamRoute({ method: 'GET', url: '/other', request: TicksCommand, resume: true })
  const port = await listen(app)
  pacer.hold()
  pacer.release(1)
  const posted = await openSse(port, '/ticks', { method: 'POST', body: JSON.stringify({ count: 3 }) })
  const streamId = await startStreamId(posted)
  await posted.until(() => posted.parser.frames.length === 2, 'start and a tick')
  await dropped(posted, app)

  const elsewhere = await app.inject({ url: `/other?count=3&lastEventId=${streamId}:1` })
  t.equal(elsewhere.statusCode, 204, 'another url does not know the stream')
  pacer.release()
  const resumed = await openSse(port, `/ticks?count=3&lastEventId=${streamId}:1`)
  t.equal(resumed.status, 200)
  t.equal(await resumed.ended, frames(streamId, [tick(1), tick(2), COMPLETE], 2), 'the frames after the id, once')
  t.equal(pacer.runs, 1, 'the command ran once')
})
