// Reconnect corners: reply.eventStream's 204, ids in odd places, stores
// that answer late, and clients that are gone before the resume is sent.
import t from 'tap'
import { frames, sseApp } from './fixtures/sse-app.js'
import { deferred, eventually, listen, openSse, startStreamId } from './fixtures/sse-client.js'
import { TicksCommand, ticksApp } from './fixtures/ticks-app.js'
import { InMemoryStreamStore, type StoredFrame, type StoredStream, type StreamLogOptions, type StreamStore } from '../src/index.js'

const tick = (n: number): unknown => ({ type: 'progress', data: { n } })

t.test('reply.eventStream: a reconnect gets 204 and the source never starts, unless restartOnReconnect', async (t) => {
  const { app } = await sseApp(t)
  let started = 0
  let released = 0
  async function * source (): AsyncGenerator<number> {
    started++
    yield 1
  }
  app.get('/feed', (request, reply) => {
    const iterable = source()
    const release = iterable.return.bind(iterable)
    iterable.return = (value) => { released++; return release(value) }
    return reply.eventStream(iterable, { restartOnReconnect: (request.query as { restart?: string }).restart === '1' })
  })
  app.get('/fn', (_request, reply) => reply.eventStream(() => source()))
  t.equal((await app.inject({ url: '/feed', headers: { 'last-event-id': 'x:1' } })).statusCode, 204)
  t.equal((await app.inject({ url: '/feed?lastEventId=x:1' })).statusCode, 204, 'the query parameter counts too')
  t.equal((await app.inject({ url: '/fn', headers: { 'last-event-id': 'x:1' } })).statusCode, 204, 'a source function is never called')
  t.equal(started, 0)
  t.equal(released, 2, 'an iterable source is returned, so a mediator stream frees itself')
  const restarted = await app.inject({ url: '/feed?restart=1', headers: { 'last-event-id': 'x:1' } })
  t.equal(restarted.statusCode, 200)
  t.equal(started, 1, 'restartOnReconnect runs the source again')
})

t.test('a repeated lastEventId parameter uses the first; a route with params resumes under its own url', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({
    method: 'GET',
    url: '/tenants/:tenant/ticks',
    request: TicksCommand,
    resume: true,
    schema: { params: { type: 'object', required: ['tenant'], properties: { tenant: { type: 'string', minLength: 2 } } } },
  })
  const port = await listen(app)
  pacer.hold()
  pacer.release(1)
  const first = await openSse(port, '/tenants/acme/ticks?count=2')
  const streamId = await startStreamId(first)
  t.equal(JSON.parse(first.parser.frames[0]!.data).cancelUrl, `/tenants/acme/ticks/${streamId}`)
  await first.until(() => first.parser.frames.length === 2, 'one tick')
  first.destroy()
  await first.ended.catch(() => {})
  const second = await openSse(port, `/tenants/acme/ticks?count=2&lastEventId=${streamId}:1&lastEventId=${streamId}:0`)
  pacer.release()
  t.equal(await second.ended, frames(streamId, [tick(1), { type: 'complete' }], 2))
  t.equal((await app.inject({ method: 'DELETE', url: `/tenants/x/ticks/${streamId}` })).statusCode, 400, 'the route params schema applies to the stream url')
  t.equal(pacer.runs, 1)
})

/** A store whose reads wait for the test. */
class GatedStore implements StreamStore {
  readonly #inner = new InMemoryStreamStore()
  gate = deferred()
  reads = 0
  open (streamId: string, options: StreamLogOptions): void { this.#inner.open(streamId, options) }
  append (streamId: string, frame: StoredFrame): void { this.#inner.append(streamId, frame) }
  end (streamId: string, keepMs: number): void { this.#inner.end(streamId, keepMs) }
  delete (streamId: string): void { this.#inner.delete(streamId) }
  async read (streamId: string, afterSeq: number): Promise<StoredStream | undefined> {
    this.reads++
    await this.gate.promise
    return this.#inner.read(streamId, afterSeq)
  }
}

t.test('a stream that ends while the store is read is resumed to its end', async (t) => {
  const store = new GatedStore()
  const { app, pacer } = await ticksApp(t, { streamStore: store })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  const port = await listen(app)
  pacer.hold()
  const first = await openSse(port, '/ticks?count=2')
  const streamId = await startStreamId(first)
  first.destroy()
  await first.ended.catch(() => {})
  pacer.release(1)
  await eventually(() => pacer.yielded === 1, 'one tick while away')
  const second = openSse(port, '/ticks?count=2', { headers: { 'last-event-id': `${streamId}:0` } })
  await eventually(() => store.reads === 1, 'the read to start')
  pacer.release()
  await eventually(() => pacer.finished === 1, 'the end of the run')
  store.gate.resolve()
  t.equal(await (await second).ended, frames(streamId, [tick(0), tick(1), { type: 'complete' }], 1))
})

t.test('frames dropped while the store is read: 204 rather than a gap', async (t) => {
  const store = new GatedStore()
  const { app, pacer } = await ticksApp(t, { streamStore: store })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: { maxBufferedFrames: 2 } })
  const port = await listen(app)
  pacer.hold()
  pacer.release(1)
  const first = await openSse(port, '/ticks?count=5')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 2, 'one tick')
  const second = app.inject({ url: '/ticks?count=5', headers: { 'last-event-id': `${streamId}:0` } })
  await eventually(() => store.reads === 1, 'the read to start')
  pacer.release()
  await first.ended
  store.gate.resolve()
  t.equal((await second).statusCode, 204)
})

t.test('a stream whose frames were never stored cannot be resumed', async (t) => {
  class Forgetful extends InMemoryStreamStore {
    override append (): void {}
  }
  const { app, pacer } = await ticksApp(t, { streamStore: new Forgetful() })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  const port = await listen(app)
  pacer.hold()
  pacer.release(1)
  const first = await openSse(port, '/ticks?count=5')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 2, 'one tick')
  t.equal((await app.inject({ url: '/ticks?count=5', headers: { 'last-event-id': `${streamId}:0` } })).statusCode, 204)
  t.equal(first.parser.frames.length, 2, 'the connected client keeps its stream')
  pacer.release()
  await first.ended
})

t.test('a reconnecting client that is gone before the resume is sent leaves the stream waiting', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({
    method: 'GET',
    url: '/ticks',
    request: TicksCommand,
    resume: { windowMs: 50 },
    preHandler: (request, reply, done) => {
      if (request.headers['x-gone'] !== undefined) reply.raw.destroy()
      done()
    },
  })
  const port = await listen(app)
  pacer.hold()
  const first = await openSse(port, '/ticks?count=5')
  const streamId = await startStreamId(first)
  first.destroy()
  await first.ended.catch(() => {})
  await t.rejects(openSse(port, '/ticks?count=5', { headers: { 'last-event-id': `${streamId}:0`, 'x-gone': '1' } }))
  await eventually(() => pacer.aborts === 1, 'the window to run out')
})
