import { EventSource } from 'eventsource'
import t from 'tap'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { streamCommand, StreamCommandError, type ReconnectInfo, type StreamFrame, type StreamCommandOptions } from '../src/client/index.js'
import { aborted, clientApp, collect, rawStream, rejection } from './fixtures/client-app.js'
import { deferred } from './fixtures/sse-client.js'
import { frames } from './fixtures/sse-app.js'

// A connection that drops mid-stream: the client reconnects with
// Last-Event-ID (same method, same body), never shows a frame twice, and
// gives up with FST_ERR_CQRS_STREAM_LOST when the server cannot resume.
// The routes resume by hand, so only the client is under test here.

const START = { type: 'start', streamId: 's' }
const progress = (n: number): { type: string, data: { n: number } } => ({ type: 'progress', data: { n } })
const COMPLETE = { type: 'complete' }

/** A route whose first answer is cut by the server (`drop`), and whose reconnects `resume` answers. */
function droppingRoute (resume: (reply: FastifyReply, lastEventId: string) => unknown) {
  const drop = deferred()
  const bodies: unknown[] = []
  const handler = (request: FastifyRequest, reply: FastifyReply): unknown => {
    bodies.push(request.body)
    const lastEventId = request.headers['last-event-id']
    if (typeof lastEventId === 'string') return resume(reply, lastEventId)
    return reply.eventStream(async function * ({ signal }) {
      yield progress(1).data
      await drop.promise
      // The network fails: the socket goes, the response never ends.
      reply.raw.socket?.destroy()
      await aborted(signal)
    }, { streamId: 's', retryMs: 10 })
  }
  return { drop, bodies, handler }
}

/** Iterates, calling `drop()` once progress 1 arrived; resolves with the frames, or the error. */
async function run (url: string, options: StreamCommandOptions, drop: () => void): Promise<{ received: StreamFrame[], error?: unknown }> {
  const received: StreamFrame[] = []
  try {
    for await (const frame of streamCommand(url, options)) {
      received.push(frame)
      if (frame.type === 'progress' && (frame.data as { n: number }).n === 1) drop()
    }
    return { received }
  } catch (error) {
    return { received, error }
  }
}

const resumed = (reply: FastifyReply): FastifyReply =>
  // s:1 once more (must be skipped), then the rest.
  rawStream(reply, frames('s', [progress(1), progress(2), COMPLETE], 1), true)

t.test('fetch (POST): a dropped connection resumes with Last-Event-ID, the same body, no duplicate', async (t) => {
  const { app, start, requests } = await clientApp(t)
  const route = droppingRoute(resumed)
  app.post('/jobs', route.handler)
  const base = await start()
  const reconnecting: ReconnectInfo[] = []
  const { received, error } = await run(`${base}/jobs`, {
    body: { job: 1 },
    onReconnecting: (info) => { reconnecting.push(info) },
  }, () => route.drop.resolve())
  t.equal(error, undefined)
  t.same(received, [
    { type: 'start', streamId: 's', id: 's:0' },
    { type: 'progress', data: { n: 1 }, id: 's:1' },
    { type: 'progress', data: { n: 2 }, id: 's:2' },
    { type: 'complete', id: 's:3' },
  ])
  t.same(reconnecting, [{ attempt: 1, lastEventId: 's:1' }])
  t.match(requests, [
    { method: 'POST', url: '/jobs', lastEventId: undefined },
    { method: 'POST', url: '/jobs', lastEventId: 's:1', headers: { 'content-type': 'application/json', accept: 'text/event-stream' } },
  ])
  t.equal(requests.length, 2)
  t.same(route.bodies, [{ job: 1 }, { job: 1 }])
})

t.test('fetch: a response that ends before the last frame is resumed too', async (t) => {
  const { app, start, requests } = await clientApp(t)
  app.get('/jobs', (request, reply) => request.headers['last-event-id'] === undefined
    ? rawStream(reply, 'retry: 10\n' + frames('s', [START, progress(1)]), true)
    : resumed(reply))
  const base = await start()
  const received = await collect(streamCommand(`${base}/jobs`))
  t.same(received.map((frame) => frame.id), ['s:0', 's:1', 's:2', 's:3'])
  t.match(requests, [{ lastEventId: undefined }, { lastEventId: 's:1' }])
})

t.test('EventSource: it reconnects by itself with Last-Event-ID; onReconnecting is told; no duplicate', async (t) => {
  const { app, start, requests } = await clientApp(t)
  const route = droppingRoute(resumed)
  app.get('/jobs', route.handler)
  const base = await start()
  const reconnecting: ReconnectInfo[] = []
  const { received, error } = await run(`${base}/jobs`, {
    EventSource,
    onReconnecting: (info) => { reconnecting.push(info) },
  }, () => route.drop.resolve())
  t.equal(error, undefined)
  t.same(received.map((frame) => frame.id), ['s:0', 's:1', 's:2', 's:3'])
  t.same(reconnecting, [{ attempt: 1, lastEventId: 's:1' }])
  t.match(requests, [{ method: 'GET', lastEventId: undefined }, { method: 'GET', lastEventId: 's:1' }])
  t.equal(requests.length, 2)
})

t.test('a reconnect answered 204: FST_ERR_CQRS_STREAM_LOST, fetch and EventSource', async (t) => {
  const { app, start, requests } = await clientApp(t)
  const viaFetch = droppingRoute((reply) => reply.code(204).send())
  const viaEventSource = droppingRoute((reply) => reply.code(204).send())
  app.post('/fetch', viaFetch.handler)
  app.get('/es', viaEventSource.handler)
  const base = await start()

  const one = await run(`${base}/fetch`, { body: {} }, () => viaFetch.drop.resolve())
  t.same(one.received.map((frame) => frame.type), ['start', 'progress'])
  t.ok(one.error instanceof StreamCommandError)
  t.match(one.error, { code: 'FST_ERR_CQRS_STREAM_LOST', statusCode: 204, streamId: 's' })

  const two = await run(`${base}/es`, { EventSource }, () => viaEventSource.drop.resolve())
  t.same(two.received.map((frame) => frame.type), ['start', 'progress'])
  t.match(two.error, {
    code: 'FST_ERR_CQRS_STREAM_LOST',
    streamId: 's',
    message: 'fastify-cqrs-stream: the stream was lost: the server cannot resume it.',
  })
  t.equal(requests.length, 4)
})

t.test('a reconnect answered with an HTTP error: its code, else FST_ERR_CQRS_STREAM_LOST', async (t) => {
  const { app, start } = await clientApp(t)
  const coded = droppingRoute((reply) => reply.code(404).send({ code: 'FST_ERR_CQRS_STREAM_NOT_FOUND', message: 'no stream "s"' }))
  const plain = droppingRoute((reply) => reply.code(502).type('text/html').send('<h1>Bad gateway</h1>'))
  app.post('/coded', coded.handler)
  app.post('/plain', plain.handler)
  const base = await start()
  t.match((await run(`${base}/coded`, { body: {} }, () => coded.drop.resolve())).error,
    { code: 'FST_ERR_CQRS_STREAM_NOT_FOUND', statusCode: 404, message: 'no stream "s"', streamId: 's' })
  t.match((await run(`${base}/plain`, { body: {} }, () => plain.drop.resolve())).error, {
    code: 'FST_ERR_CQRS_STREAM_LOST',
    statusCode: 502,
    streamId: 's',
    message: 'fastify-cqrs-stream: the server answered 502 (text/html), not an event stream.',
  })
})

t.test('maxReconnects reconnects in a row without a new frame: FST_ERR_CQRS_STREAM_LOST', async (t) => {
  const { app, start, requests } = await clientApp(t)
  // Each answer repeats what the client has and ends: no progress.
  const stuck = (reply: FastifyReply): FastifyReply => rawStream(reply, 'retry: 10\n' + frames('s', [START, progress(1)]), true)
  app.get('/stuck', (_request, reply) => stuck(reply))
  const base = await start()
  for (const EventSourceClass of [undefined, EventSource]) {
    requests.length = 0
    const reconnecting: number[] = []
    const error = await rejection(collect(streamCommand(`${base}/stuck`, {
      EventSource: EventSourceClass,
      maxReconnects: 2,
      onReconnecting: ({ attempt }) => { reconnecting.push(attempt) },
    })))
    const via = EventSourceClass === undefined ? 'fetch' : 'EventSource'
    t.match(error, {
      code: 'FST_ERR_CQRS_STREAM_LOST',
      streamId: 's',
      message: 'fastify-cqrs-stream: the stream was lost: 2 reconnects in a row brought no frame.',
    }, via)
    t.same(reconnecting, [1, 2], via)
    t.same(requests.map((request) => request.lastEventId), [undefined, 's:1', 's:1'], via)
  }
})

t.test('maxReconnects must be a non-negative integer', async (t) => {
  for (const maxReconnects of [-1, 1.5, Number.NaN]) {
    await t.rejects(collect(streamCommand('http://127.0.0.1:9/never', { maxReconnects })), {
      code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION',
      message: `fastify-cqrs-stream: maxReconnects must be a non-negative integer, got ${String(maxReconnects)}.`,
    })
  }
})

t.test('a connection lost before the first frame is not retried: that could run the command twice', async (t) => {
  const { app, start, requests } = await clientApp(t)
  app.get('/empty', (_request, reply) => rawStream(reply, 'retry: 10\n', true))
  const base = await start()
  for (const EventSourceClass of [undefined, EventSource]) {
    requests.length = 0
    const via = EventSourceClass === undefined ? 'fetch' : 'EventSource'
    t.match(await rejection(collect(streamCommand(`${base}/empty`, { EventSource: EventSourceClass }))), {
      code: 'FST_ERR_CQRS_STREAM_LOST',
      streamId: undefined,
      message: 'fastify-cqrs-stream: the stream was lost: the connection closed before the first frame.',
    }, via)
    t.equal(requests.length, 1, via)
  }
})

t.test('an unreachable server during a reconnect is another attempt', async (t) => {
  const { app, start, requests } = await clientApp(t)
  const route = droppingRoute(resumed)
  app.post('/jobs', route.handler)
  const base = await start()
  let calls = 0
  const flaky: typeof fetch = (input, init) => ++calls === 2 ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init)
  const reconnecting: ReconnectInfo[] = []
  const { received, error } = await run(`${base}/jobs`, {
    body: {},
    fetch: flaky,
    onReconnecting: (info) => { reconnecting.push(info) },
  }, () => route.drop.resolve())
  t.equal(error, undefined)
  t.same(received.map((frame) => frame.id), ['s:0', 's:1', 's:2', 's:3'])
  t.same(reconnecting, [{ attempt: 1, lastEventId: 's:1' }, { attempt: 2, lastEventId: 's:1' }])
  t.equal(calls, 3)
  t.equal(requests.length, 2, 'the failed attempt never reached the server')
})

t.test('aborting while waiting to reconnect, or during the reconnect, rejects with the reason', async (t) => {
  const { app, start, requests } = await clientApp(t)
  const waiting = droppingRoute(resumed)
  const connecting = droppingRoute(resumed)
  app.post('/waiting', waiting.handler)
  app.post('/connecting', connecting.handler)
  const base = await start()

  const first = new AbortController()
  const reason = new Error('left the page')
  const one = await run(`${base}/waiting`, {
    body: {},
    signal: first.signal,
    // Before the wait is over (the default wait is 1000 ms; this server hints 10).
    onReconnecting: () => { queueMicrotask(() => first.abort(reason)) },
  }, () => waiting.drop.resolve())
  t.equal(one.error, reason)

  const second = new AbortController()
  let calls = 0
  const one2 = await run(`${base}/connecting`, {
    body: {},
    signal: second.signal,
    fetch: (input, init) => {
      if (++calls === 2) second.abort(reason)
      return fetch(input, init)
    },
  }, () => connecting.drop.resolve())
  t.equal(one2.error, reason)
  t.same(requests.map((request) => request.url), ['/waiting', '/connecting'], 'no reconnect reached the server')
})

t.test('an onReconnecting that throws ends the stream with its error', async (t) => {
  const { app, start } = await clientApp(t)
  const viaEventSource = droppingRoute(resumed)
  app.get('/jobs', viaEventSource.handler)
  const base = await start()
  const oops = new Error('oops')
  const { error } = await run(`${base}/jobs`, { EventSource, onReconnecting: () => { throw oops } }, () => viaEventSource.drop.resolve())
  t.equal(error, oops)
})
