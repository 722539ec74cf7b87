import t from 'tap'
import { errors, type SourceContext } from '../src/index.js'
import { frames, sseApp } from './fixtures/sse-app.js'
import { parseSse, payload } from './fixtures/sse-parser.js'

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
}
const HANDLER_FAILED = 'FST_ERR_CQRS_STREAM_HANDLER_FAILED'
const genericMessage = new errors.HandlerFailedError().message
const failed = { type: 'error', error: { code: HANDLER_FAILED, message: genericMessage } }
const START = (streamId: string): unknown => ({ type: 'start', streamId })
const PROGRESS = (data: unknown): unknown => ({ type: 'progress', data })
const COMPLETE = { type: 'complete' }

t.test('SSE headers, earlier headers kept, whole body', async (t) => {
  const { app } = await sseApp(t)
  app.get('/ticks', (_request, reply) => {
    reply.header('x-trace-id', 'abc-123')
    reply.header('set-cookie', ['a=1', 'b=2'])
    return reply.eventStream(async function * () {
      yield { n: 1 }
      yield 'two'
      yield undefined
    }, { streamId: 's' })
  })
  const res = await app.inject({ method: 'GET', url: '/ticks' })
  t.equal(res.statusCode, 200)
  t.match(res.headers, { ...SSE_HEADERS, 'x-trace-id': 'abc-123' })
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'])
  t.equal(res.headers['content-length'], undefined)
  t.equal(res.body, frames('s', [START('s'), PROGRESS({ n: 1 }), PROGRESS('two'), PROGRESS(null), COMPLETE]))
})

t.test('the SSE headers win over the same headers set earlier', async (t) => {
  const { app } = await sseApp(t)
  app.get('/s', (_request, reply) => {
    reply.header('content-type', 'application/json')
    reply.header('cache-control', 'max-age=600')
    reply.header('X-Accel-Buffering', 'yes')
    return reply.eventStream(async function * () {}, { streamId: 's' })
  })
  const res = await app.inject({ method: 'GET', url: '/s' })
  t.match(res.headers, SSE_HEADERS)
  t.equal(res.body, frames('s', [START('s'), COMPLETE]))
})

t.test('an empty source gives start and complete', async (t) => {
  const { app } = await sseApp(t)
  app.get('/s', (_request, reply) => reply.eventStream((async function * () {})(), { streamId: 'empty' }))
  const res = await app.inject('/s')
  t.equal(res.body, frames('empty', [START('empty'), COMPLETE]))
})

t.test('a POST route streams from its body; an async iterable that is not a generator works', async (t) => {
  const { app } = await sseApp(t)
  app.post<{ Body: { items: string[] } }>('/run', (request, reply) => {
    const items = request.body.items
    const iterable: AsyncIterable<string> = {
      [Symbol.asyncIterator] () {
        let i = 0
        return { next: async () => i < items.length ? { value: items[i++]!, done: false } : { value: undefined, done: true } }
      },
    }
    return reply.eventStream(iterable, { streamId: 'p' })
  })
  const res = await app.inject({ method: 'POST', url: '/run', payload: { items: ['a', 'b'] } })
  t.equal(res.body, frames('p', [START('p'), PROGRESS('a'), PROGRESS('b'), COMPLETE]))
})

t.test('the source function gets { signal, streamId } matching the start frame', async (t) => {
  const { app } = await sseApp(t)
  const seen: SourceContext[] = []
  app.get('/s', (_request, reply) => reply.eventStream((context) => {
    seen.push(context)
    return (async function * () { yield context.signal.aborted })()
  }))
  const res = await app.inject('/s')
  t.equal(seen.length, 1)
  const { signal, streamId } = seen[0]!
  t.ok(signal instanceof AbortSignal)
  t.match(streamId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a random UUID by default')
  t.equal(res.body, frames(streamId, [START(streamId), PROGRESS(false), COMPLETE]))
  t.equal(signal.aborted, false, 'a stream that completes does not abort its signal')

  const second = await app.inject('/s')
  t.not(seen[1]!.streamId, streamId, 'each stream gets its own id')
  t.equal(payload(parseSse(second.body).frames[0]!).streamId, seen[1]!.streamId)
})

t.test('an explicit streamId reaches the source function', async (t) => {
  const { app } = await sseApp(t)
  app.get('/s', (_request, reply) => reply.eventStream(async function * ({ streamId }) { yield streamId }, { streamId: 'order-42' }))
  const res = await app.inject('/s')
  t.equal(res.body, frames('order-42', [START('order-42'), PROGRESS('order-42'), COMPLETE]))
})

t.test('per-call namedEvents and retryMs', async (t) => {
  const { app } = await sseApp(t)
  app.get('/s', (_request, reply) => reply.eventStream(async function * () { yield 1 }, { streamId: 'n', namedEvents: true, retryMs: 3000 }))
  const res = await app.inject('/s')
  t.equal(res.body,
    'id: n:0\nevent: start\nretry: 3000\ndata: {"type":"start","streamId":"n"}\n\n' +
    'id: n:1\nevent: progress\ndata: {"type":"progress","data":1}\n\n' +
    'id: n:2\nevent: complete\ndata: {"type":"complete"}\n\n')
})

t.test('items larger than one write and small ones keep their order', async (t) => {
  const { app } = await sseApp(t)
  const big = 'b'.repeat(40 * 1024)
  app.get('/s', (_request, reply) => reply.eventStream(async function * () {
    yield 'small-1'
    yield big
    yield 'small-2'
    yield big
  }, { streamId: 'o' }))
  const res = await app.inject('/s')
  t.equal(res.body, frames('o', [START('o'), PROGRESS('small-1'), PROGRESS(big), PROGRESS('small-2'), PROGRESS(big), COMPLETE]))
})

t.test('a source that throws: error frame, clean end, logged, app keeps serving', async (t) => {
  const { app, logs } = await sseApp(t)
  let finallyRan = false
  app.get('/fail', (_request, reply) => reply.eventStream(async function * () {
    try {
      yield 1
      throw new Error('database password is hunter2')
    } finally {
      finallyRan = true
    }
  }, { streamId: 'f' }))
  app.get('/ok', async () => ({ ok: true }))
  const res = await app.inject('/fail')
  t.equal(res.statusCode, 200)
  t.equal(res.body, frames('f', [START('f'), PROGRESS(1), failed]))
  t.notMatch(res.body, /hunter2/)
  t.ok(finallyRan)
  t.equal(logs.length, 1)
  t.equal(logs[0]!.err?.message, 'database password is hunter2', 'the details go to the log')
  t.same((await app.inject('/ok')).json(), { ok: true })
})

t.test('a source that throws an exposed or own error shows its code', async (t) => {
  const { app, logs, pluginLogs } = await sseApp(t)
  app.get('/exposed', (_request, reply) => reply.eventStream(async function * () {
    throw Object.assign(new Error('out of stock'), { code: 'E_STOCK', expose: true })
  }, { streamId: 'e' }))
  app.get('/shutdown', (_request, reply) => reply.eventStream(async function * () {
    yield 1
    throw new errors.ShutdownError()
  }, { streamId: 'd' }))
  const exposed = await app.inject('/exposed')
  t.equal(exposed.body, frames('e', [START('e'), { type: 'error', error: { code: 'E_STOCK', message: 'out of stock' } }]))
  t.equal(logs.length, 0, 'an exposed error is the client\'s: not logged as an error')
  t.same(pluginLogs.map(({ level, msg, streamId, error, err }) => ({ level, msg, streamId, error, err })), [{
    level: 30,
    msg: 'fastify-cqrs-stream: stream ended with an error for the client',
    streamId: 'e',
    error: { code: 'E_STOCK', message: 'out of stock' },
    err: undefined,
  }], 'but at info, with its code and message and no stack')
  const shutdown = await app.inject('/shutdown')
  const shutdownError = new errors.ShutdownError()
  t.equal(shutdown.body, frames('d', [START('d'), PROGRESS(1), { type: 'error', error: { code: shutdownError.code, message: shutdownError.message } }]))
  t.equal(logs.length, 0, 'a shutdown is not logged as a failure')
})

t.test('a source function that throws, or returns no async iterable, ends with an error frame', async (t) => {
  const { app, logs } = await sseApp(t)
  app.get('/throws', (_request, reply) => reply.eventStream(() => { throw new Error('sync') }, { streamId: 't' }))
  app.get('/returns', (_request, reply) => reply.eventStream((() => [1, 2]) as unknown as () => AsyncIterable<number>, { streamId: 'r' }))
  t.equal((await app.inject('/throws')).body, frames('t', [START('t'), failed]))
  t.equal((await app.inject('/returns')).body, frames('r', [START('r'), failed]))
  t.equal(logs.length, 2)
})

t.test('a source yielding a BigInt: SERIALIZATION error frame, and the source is stopped', async (t) => {
  const { app, logs } = await sseApp(t)
  let finallyRan = false
  let pulledAfter = false
  app.get('/s', (_request, reply) => reply.eventStream(async function * () {
    try {
      yield { ok: 1 }
      yield { big: 10n }
      pulledAfter = true
      yield { never: true }
    } finally {
      finallyRan = true
    }
  }, { streamId: 'b' }))
  const res = await app.inject('/s')
  const code = new errors.SerializationError('x').code
  const message = 'fastify-cqrs-stream: the server could not send a result. The server log has the details.'
  t.equal(res.body, frames('b', [START('b'), PROGRESS({ ok: 1 }), { type: 'error', error: { code, message } }]), 'the client gets a generic message')
  t.ok(finallyRan, 'the finally block ran')
  t.notOk(pulledAfter, 'nothing is pulled after the failed item')
  t.equal(logs[0]?.err?.code, code)
  t.equal(logs[0]?.err?.message, 'fastify-cqrs-stream: a streamed item could not be serialised to JSON (yield plain data): Do not know how to serialize a BigInt', 'the log says why')
})

t.test('a circular item gives a SERIALIZATION error frame too', async (t) => {
  const { app } = await sseApp(t)
  const circular: Record<string, unknown> = {}
  circular.self = circular
  app.get('/s', (_request, reply) => reply.eventStream(async function * () { yield circular }, { streamId: 'c' }))
  const parsed = parseSse((await app.inject('/s')).body)
  t.same(parsed.frames.map((frame) => payload(frame).type), ['start', 'error'])
  t.match(payload(parsed.frames[1]!), { error: { code: 'FST_ERR_CQRS_STREAM_SERIALIZATION' } })
})

t.test('a custom serializer: used per item, checked for line breaks', async (t) => {
  const { app } = await sseApp(t)
  app.get('/good', (_request, reply) => reply.eventStream(async function * () { yield 7 }, {
    streamId: 'g', serialize: (n: number) => `{"n":${n}}`,
  }))
  app.get('/bad', (_request, reply) => reply.eventStream(async function * () { yield 7 }, {
    streamId: 'x', serialize: (n: number) => `{\n"n":${n}}`,
  }))
  t.equal((await app.inject('/good')).body, frames('g', [START('g'), PROGRESS({ n: 7 }), COMPLETE]))
  const bad = parseSse((await app.inject('/bad')).body)
  t.same(bad.frames.map((frame) => frame.id), ['x:0', 'x:1'])
  t.match(payload(bad.frames[1]!), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_SERIALIZATION' } })
})

t.test('a source that is not an async iterable or function: 500 INVALID_SOURCE, nothing streamed', async (t) => {
  const { app } = await sseApp(t)
  const bad: unknown[] = [42, null, undefined, 'text', [1, 2], { next () {} }, (function * () { yield 1 })()]
  app.get<{ Querystring: { i: string } }>('/s', (request, reply) => reply.eventStream(bad[Number(request.query.i)] as AsyncIterable<unknown>))
  for (let i = 0; i < bad.length; i++) {
    const res = await app.inject(`/s?i=${i}`)
    t.equal(res.statusCode, 500, String(i))
    t.match(res.headers['content-type'], /^application\/json/)
    t.equal(res.json().code, 'FST_ERR_CQRS_STREAM_INVALID_SOURCE', String(i))
  }
})

t.test('invalid per-call options: 500 INVALID_OPTION before anything is streamed or called', async (t) => {
  const { app } = await sseApp(t)
  const bad: Record<string, unknown>[] = [
    { heartbeatMs: -1 }, { heartbeatMs: 1.5 }, { heartbeatMs: '1000' }, { heartbeatMs: Infinity }, { heartbeatMs: NaN },
    { retryMs: -5 }, { retryMs: 2.5 }, { namedEvents: 'yes' },
  ]
  let called = 0
  app.get<{ Querystring: { i: string } }>('/s', (request, reply) =>
    reply.eventStream(() => { called++; return (async function * () {})() }, bad[Number(request.query.i)]))
  for (let i = 0; i < bad.length; i++) {
    const res = await app.inject(`/s?i=${i}`)
    t.equal(res.statusCode, 500, JSON.stringify(bad[i]))
    t.equal(res.json().code, 'FST_ERR_CQRS_STREAM_INVALID_OPTION', JSON.stringify(bad[i]))
  }
  t.equal(called, 0)
})

t.test('a streamId with a line break is refused before anything is streamed', async (t) => {
  const { app } = await sseApp(t)
  let called = false
  app.get('/s', (_request, reply) => reply.eventStream(() => { called = true; return (async function * () {})() }, { streamId: 'a\nid: evil' }))
  const res = await app.inject('/s')
  t.equal(res.statusCode, 500)
  t.match(res.headers['content-type'], /^application\/json/)
  t.equal(res.json().code, 'FST_ERR_CQRS_STREAM_INVALID_OPTION')
  t.notMatch(res.body, /^id: /m)
  t.notOk(called)
})

t.test('valid edge options: heartbeatMs 0 and retryMs 0', async (t) => {
  const { app } = await sseApp(t)
  app.get('/s', (_request, reply) => reply.eventStream(async function * () { yield 1 }, { streamId: 'z', heartbeatMs: 0, retryMs: 0 }))
  const res = await app.inject('/s')
  t.equal(res.body,
    'id: z:0\nretry: 0\ndata: {"type":"start","streamId":"z"}\n\n' +
    'id: z:1\ndata: {"type":"progress","data":1}\n\n' +
    'id: z:2\ndata: {"type":"complete"}\n\n')
})
