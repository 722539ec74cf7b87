import { Type } from '@sinclair/typebox'
import t from 'tap'
import type { Teardown } from './fixtures/app-orders.js'
import { Request, Response, StreamingRequestHandler, type StreamContext } from '../src/index.js'
import { streamCommand, StreamCommandError, type StreamFrame } from '../src/client/index.js'
import { clientApp, collect, items, rawStream, rejection } from './fixtures/client-app.js'
import { frames } from './fixtures/sse-app.js'

// streamCommand() reading with fetch (POST, and GET without EventSource)
// against real Fastify apps: whole frames, what was sent, and coded errors.

class CountCommand extends Request(Type.Object({ to: Type.Integer({ minimum: 1, maximum: 10 }) })) {}
class CountResult extends Response(Type.Object({ n: Type.Integer() })) {}
class CountHandler extends StreamingRequestHandler<CountCommand, CountResult> {
  async * handle (command: CountCommand, { signal }: StreamContext): AsyncGenerator<CountResult> {
    for (let n = 1; n <= command.to; n++) {
      signal.throwIfAborted()
      yield new CountResult({ n })
    }
  }
}

async function countApp (t: Teardown, namedEvents = false) {
  const kit = await clientApp(t, { requests: (map) => map.bind(CountCommand, CountHandler), namedEvents })
  kit.app.streamRoute({ method: 'POST', url: '/count', request: CountCommand, response: CountResult })
  kit.app.streamRoute({ method: 'GET', url: '/count', request: CountCommand, response: CountResult })
  return { ...kit, base: await kit.start() }
}

/** The frames a count to `to` yields, ids from the start frame's stream id. */
function counted (received: Array<StreamFrame<{ n: number }>>, to: number): Array<StreamFrame<{ n: number }>> {
  const streamId = (received[0] as { streamId: string }).streamId
  return [
    { type: 'start', streamId, id: `${streamId}:0` },
    ...Array.from({ length: to }, (_, index) => ({ type: 'progress' as const, data: { n: index + 1 }, id: `${streamId}:${index + 1}` })),
    { type: 'complete', id: `${streamId}:${to + 1}` },
  ]
}

t.test('POST: the command as JSON, the frames read with fetch', async (t) => {
  const { base, requests } = await countApp(t)
  const received = await collect(streamCommand<{ n: number }>(`${base}/count`, { body: { to: 3 } }))
  t.same(received, counted(received, 3))
  t.equal(requests.length, 1)
  t.match(requests[0], {
    method: 'POST',
    url: '/count',
    lastEventId: undefined,
    headers: { accept: 'text/event-stream', 'content-type': 'application/json', 'content-length': '8' },
  })
})

t.test('GET without an EventSource (Node 20 has none): read with fetch', async (t) => {
  t.equal((globalThis as { EventSource?: unknown }).EventSource, undefined, 'no global EventSource here')
  const { base, requests } = await countApp(t)
  const received = await collect(streamCommand<{ n: number }>(new URL(`${base}/count?to=2`)))
  t.same(received, counted(received, 2))
  t.match(requests, [{ method: 'GET', url: '/count?to=2', headers: { accept: 'text/event-stream' } }])
  t.notOk('content-type' in requests[0]!.headers, 'no body, no content-type')
})

t.test('named events: the same frames', async (t) => {
  const { base } = await countApp(t, true)
  const received = await collect(streamCommand<{ n: number }>(`${base}/count`, { body: { to: 2 } }))
  t.same(received, counted(received, 2))
})

t.test('a GET with headers is read with fetch, which can send them', async (t) => {
  const { base, requests } = await countApp(t)
  let constructed = 0
  class NeverEventSource {
    readyState = 0
    constructor () { constructed++ }
    addEventListener (): void {}
    close (): void {}
  }
  const received = await collect(streamCommand(`${base}/count?to=1`, { headers: { 'x-token': 'abc' }, EventSource: NeverEventSource }))
  t.equal(received.length, 3)
  t.equal(constructed, 0, 'no EventSource')
  t.match(requests, [{ method: 'GET', headers: { 'x-token': 'abc', accept: 'text/event-stream' } }])
})

t.test('an explicit method, and the fetch option', async (t) => {
  const { app, requests, start } = await clientApp(t)
  app.post('/tick', (_request, reply) => reply.eventStream(items({ tick: 1 })))
  const base = await start()
  const calls: string[] = []
  const spy: typeof fetch = (input, init) => {
    calls.push(`${init?.method} ${String(input)}`)
    return fetch(input, init)
  }
  const received = await collect(streamCommand(`${base}/tick`, { method: 'POST', fetch: spy }))
  t.match(received, [{ type: 'start' }, { type: 'progress', data: { tick: 1 } }, { type: 'complete' }])
  t.same(calls, [`POST ${base}/tick`])
  t.match(requests, [{ method: 'POST', url: '/tick' }])
  t.notOk('content-type' in requests[0]!.headers)
})

t.test('a relative url resolves against the page (location) in a browser', async (t) => {
  const { base } = await countApp(t)
  const global = globalThis as { location?: { href: string } }
  global.location = { href: `${base}/app/page.html` }
  t.teardown(() => { delete global.location })
  const received = await collect(streamCommand('/count?to=1'))
  t.equal(received.length, 3)
})

t.test('an error frame rejects with its code and message, after the frames before it', async (t) => {
  const { app, start } = await clientApp(t)
  app.get('/fails', (_request, reply) => reply.eventStream(async function * () {
    yield { n: 1 }
    throw Object.assign(new Error('order b is out of stock'), { expose: true, code: 'E_OUT_OF_STOCK' })
  }))
  const base = await start()
  const received: StreamFrame[] = []
  const error = await rejection((async () => {
    for await (const frame of streamCommand(`${base}/fails`)) received.push(frame)
  })())
  t.match(received, [{ type: 'start' }, { type: 'progress', data: { n: 1 } }])
  t.equal(received.length, 2)
  t.ok(error instanceof StreamCommandError)
  t.match(error, {
    name: 'StreamCommandError',
    code: 'E_OUT_OF_STOCK',
    message: 'order b is out of stock',
    streamId: (received[0] as { streamId: string }).streamId,
    statusCode: undefined,
  })
})

t.test('an HTTP error before the stream: the code of its JSON body and the status', async (t) => {
  const { base, requests } = await countApp(t)
  const invalid = await rejection(collect(streamCommand(`${base}/count`, { body: { to: 0 } })))
  t.ok(invalid instanceof StreamCommandError)
  t.match(invalid, { code: 'FST_ERR_VALIDATION', statusCode: 400, message: /must be >= 1/, streamId: undefined })

  // Fastify's 404 body has a message but no code.
  const missing = await rejection(collect(streamCommand(`${base}/nowhere`, { body: {} })))
  t.match(missing, { code: 'FST_ERR_CQRS_STREAM_HTTP', statusCode: 404, message: 'Route POST:/nowhere not found' })
  t.equal(requests.length, 2, 'no retry')
})

t.test('answers that are not an event stream: FST_ERR_CQRS_STREAM_HTTP with the status', async (t) => {
  const { app, start } = await clientApp(t)
  app.get('/text', (_request, reply) => reply.code(500).type('text/plain').send('boom'))
  app.get('/json', (_request, reply) => reply.send({ ok: true }))
  app.get('/bare', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200)
    reply.raw.end()
  })
  const base = await start()
  t.match(await rejection(collect(streamCommand(`${base}/text`))), {
    code: 'FST_ERR_CQRS_STREAM_HTTP',
    statusCode: 500,
    message: 'fastify-cqrs-stream: the server answered 500 (text/plain), not an event stream.',
  })
  t.match(await rejection(collect(streamCommand(`${base}/json`))), {
    code: 'FST_ERR_CQRS_STREAM_HTTP',
    statusCode: 200,
    message: 'fastify-cqrs-stream: the server answered 200 (application/json; charset=utf-8), not an event stream.',
  })
  t.match(await rejection(collect(streamCommand(`${base}/bare`))), {
    code: 'FST_ERR_CQRS_STREAM_HTTP',
    statusCode: 200,
    message: 'fastify-cqrs-stream: the server answered 200 (no content-type), not an event stream.',
  })
})

t.test('a 204 answer: the server has no stream to send (FST_ERR_CQRS_STREAM_LOST)', async (t) => {
  const { app, start, requests } = await clientApp(t)
  app.get('/gone', (_request, reply) => reply.code(204).send())
  const base = await start()
  const error = await rejection(collect(streamCommand(`${base}/gone`)))
  t.ok(error instanceof StreamCommandError)
  t.match(error, {
    code: 'FST_ERR_CQRS_STREAM_LOST',
    statusCode: 204,
    message: 'fastify-cqrs-stream: the server has no stream to send (204 No Content).',
  })
  t.equal(requests.length, 1)
})

t.test('a frame that is not ours: FST_ERR_CQRS_STREAM_PROTOCOL; frame types it does not know are skipped', async (t) => {
  const { app, start } = await clientApp(t)
  app.get('/foreign', (_request, reply) => rawStream(reply,
    frames('s', [{ type: 'start', streamId: 's' }, { type: 'checkpoint' }]) + 'id: s:2\ndata: hello\n\n'))
  const base = await start()
  const received: StreamFrame[] = []
  const error = await rejection((async () => {
    for await (const frame of streamCommand(`${base}/foreign`)) received.push(frame)
  })())
  t.same(received, [{ type: 'start', streamId: 's', id: 's:0' }])
  t.match(error, { code: 'FST_ERR_CQRS_STREAM_PROTOCOL', message: /not a frame of this package: hello$/ })
})

t.test('two-step: a 202 { streamId, url } is followed by a GET of url (fetch without EventSource)', async (t) => {
  const { app, start, requests } = await clientApp(t)
  app.post('/orders', (_request, reply) => reply.code(202).send({ streamId: 'o1', url: 'orders/o1' }))
  app.get('/orders/:id', (_request, reply) => reply.eventStream(items({ n: 1 }), { streamId: 'o1' }))
  const base = await start()
  const received = await collect(streamCommand(`${base}/orders`, { body: { orderIds: ['a'] }, headers: { authorization: 'Bearer t' } }))
  t.same(received, [
    { type: 'start', streamId: 'o1', id: 'o1:0' },
    { type: 'progress', data: { n: 1 }, id: 'o1:1' },
    { type: 'complete', id: 'o1:2' },
  ])
  t.match(requests, [
    { method: 'POST', url: '/orders', headers: { 'content-type': 'application/json', authorization: 'Bearer t' } },
    { method: 'GET', url: '/orders/o1', headers: { accept: 'text/event-stream', authorization: 'Bearer t' } },
  ])
  t.notOk('content-type' in requests[1]!.headers, 'the GET has no body')
})

t.test('two-step: a 202 without a url, and a GET that fails', async (t) => {
  const { app, start } = await clientApp(t)
  app.post('/no-url', (_request, reply) => reply.code(202).send({ streamId: 'x' }))
  app.post('/not-json', (_request, reply) => reply.code(202).type('text/plain').send('accepted'))
  app.post('/expired', (_request, reply) => reply.code(202).send({ streamId: 'x', url: '/streams/x' }))
  app.get('/streams/:id', (_request, reply) => reply.code(404).send({ code: 'FST_ERR_CQRS_STREAM_NOT_FOUND', message: 'no stream "x" here' }))
  const base = await start()
  for (const path of ['/no-url', '/not-json']) {
    t.match(await rejection(collect(streamCommand(`${base}${path}`, { body: {} }))), {
      code: 'FST_ERR_CQRS_STREAM_HTTP',
      statusCode: 202,
      message: 'fastify-cqrs-stream: the server answered 202 without the stream\'s url.',
    }, path)
  }
  t.match(await rejection(collect(streamCommand(`${base}/expired`, { body: {} }))),
    { code: 'FST_ERR_CQRS_STREAM_NOT_FOUND', statusCode: 404, message: 'no stream "x" here' })
})

t.test('a relative url: resolved against baseUrl; without one (Node has no page) a coded error, not ERR_INVALID_URL', async (t) => {
  const { base, requests } = await countApp(t)
  const received = await collect(streamCommand<{ n: number }>('/count', { body: { to: 1 }, baseUrl: base }))
  t.same(received, counted(received, 1), 'a string baseUrl')
  const relativeToBase = await collect(streamCommand<{ n: number }>('count?to=2', { baseUrl: new URL(`${base}/`) }))
  t.same(relativeToBase, counted(relativeToBase, 2), 'a URL baseUrl, a path relative to it')
  t.same(requests.map((request) => request.url), ['/count', '/count?to=2'])

  const relative = await rejection(streamCommand('/count', { body: { to: 1 } }).next())
  t.ok(relative instanceof StreamCommandError)
  t.match(relative, {
    code: 'FST_ERR_CQRS_STREAM_INVALID_URL',
    message: 'fastify-cqrs-stream: "/count" is a relative url and there is no page to resolve it against: pass an absolute url, or the server\'s address as the baseUrl option.',
  })
  t.match(await rejection(streamCommand('/count', { baseUrl: 'localhost:3000/x y' }).next()), {
    code: 'FST_ERR_CQRS_STREAM_INVALID_URL', message: /^fastify-cqrs-stream: "\/count" is not a url\.$/,
  }, 'a base that parses as a url with a scheme, a url that does not resolve')
  t.match(await rejection(streamCommand('/count', { baseUrl: '127.0.0.1:3000' }).next()), {
    code: 'FST_ERR_CQRS_STREAM_INVALID_URL',
  })
  t.match(await rejection(streamCommand('/count', { baseUrl: 'not a url' }).next()), {
    code: 'FST_ERR_CQRS_STREAM_INVALID_URL', message: 'fastify-cqrs-stream: baseUrl must be an absolute url, got "not a url".',
  })
  t.match(await rejection(streamCommand('http://[', { baseUrl: base }).next()), {
    code: 'FST_ERR_CQRS_STREAM_INVALID_URL', message: 'fastify-cqrs-stream: "http://[" is not a url.',
  })
  t.equal(requests.length, 2, 'nothing was sent for a bad url')
})
