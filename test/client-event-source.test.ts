import { setTimeout as sleep } from 'node:timers/promises'
import { EventSource } from 'eventsource'
import t from 'tap'
import { streamCommand, StreamCommandError, type StreamFrame } from '../src/client/index.js'
import { clientApp, collect, items, rawStream, rejection } from './fixtures/client-app.js'
import { frames } from './fixtures/sse-app.js'

// streamCommand() on GET with an EventSource (the `eventsource` package, as
// a browser's would be) against real Fastify apps.

// Long enough for an EventSource told `retry: 10` to have reconnected many times.
const GRACE_MS = 1000

t.test('GET with an EventSource: the frames, one request, and no reconnect after complete', async (t) => {
  const { app, start, requests } = await clientApp(t)
  // retry: 10 would make a left-open EventSource reconnect within a few ms.
  app.get('/ticks', (_request, reply) => reply.eventStream(items({ n: 1 }, { n: 2 }), { retryMs: 10, streamId: 's' }))
  const base = await start()
  const received = await collect(streamCommand(`${base}/ticks`, { EventSource }))
  t.same(received, [
    { type: 'start', streamId: 's', id: 's:0' },
    { type: 'progress', data: { n: 1 }, id: 's:1' },
    { type: 'progress', data: { n: 2 }, id: 's:2' },
    { type: 'complete', id: 's:3' },
  ])
  await sleep(GRACE_MS)
  t.match(requests, [{ method: 'GET', url: '/ticks', lastEventId: undefined, headers: { accept: 'text/event-stream' } }])
  t.equal(requests.length, 1, 'the EventSource was closed on the complete frame')
})

t.test('the EventSource is closed when the last frame arrives, before the caller reads it', async (t) => {
  const { app, start, requests } = await clientApp(t)
  app.get('/ticks', (_request, reply) => reply.eventStream(items({ n: 1 }), { retryMs: 10, streamId: 's' }))
  const base = await start()
  const iterator = streamCommand(`${base}/ticks`, { EventSource })
  t.match(await iterator.next(), { value: { type: 'start' } })
  // The caller dawdles while complete arrives and the server ends the response.
  await sleep(GRACE_MS)
  t.equal(requests.length, 1, 'no reconnect while the caller was away')
  t.match(await iterator.next(), { value: { type: 'progress' } })
  t.match(await iterator.next(), { value: { type: 'complete' } })
  t.same(await iterator.next(), { value: undefined, done: true })
})

t.test('named events: frames arrive on start/progress/complete/error listeners', async (t) => {
  const { app, start } = await clientApp(t, { namedEvents: true })
  app.get('/ticks', (_request, reply) => reply.eventStream(items({ n: 1 }), { streamId: 's' }))
  app.get('/fails', (_request, reply) => reply.eventStream(async function * () {
    yield { n: 1 }
    throw Object.assign(new Error('no stock'), { expose: true, code: 'E_STOCK' })
  }, { streamId: 'f' }))
  const base = await start()
  t.same(await collect(streamCommand(`${base}/ticks`, { EventSource })), [
    { type: 'start', streamId: 's', id: 's:0' },
    { type: 'progress', data: { n: 1 }, id: 's:1' },
    { type: 'complete', id: 's:2' },
  ])
  // The frame on the `error` event is a MessageEvent with data, not EventSource's connection error.
  const received: StreamFrame[] = []
  const error = await rejection((async () => {
    for await (const frame of streamCommand(`${base}/fails`, { EventSource })) received.push(frame)
  })())
  t.same(received.map((frame) => frame.type), ['start', 'progress'])
  t.ok(error instanceof StreamCommandError)
  t.match(error, { code: 'E_STOCK', message: 'no stock', streamId: 'f' })
})

t.test('an error frame without named events rejects the same way', async (t) => {
  const { app, start, requests } = await clientApp(t)
  app.get('/fails', (_request, reply) => reply.eventStream(async function * () {
    yield * []
    throw new Error('internal detail')
  }, { streamId: 'f', retryMs: 10 }))
  const base = await start()
  t.match(await rejection(collect(streamCommand(`${base}/fails`, { EventSource }))), {
    code: 'FST_ERR_CQRS_STREAM_HANDLER_FAILED',
    message: 'fastify-cqrs-stream: the command failed. The server log has the details.',
    streamId: 'f',
  })
  await sleep(GRACE_MS)
  t.equal(requests.length, 1, 'closed on the error frame')
})

t.test('an EventSource that cannot open: FST_ERR_CQRS_STREAM_HTTP (a browser does not tell the status)', async (t) => {
  const { app, start, requests } = await clientApp(t)
  app.get('/invalid', (_request, reply) => reply.code(400).send({ code: 'FST_ERR_VALIDATION', message: 'bad' }))
  const base = await start()
  const error = await rejection(collect(streamCommand(`${base}/invalid`, { EventSource })))
  t.ok(error instanceof StreamCommandError)
  t.match(error, {
    code: 'FST_ERR_CQRS_STREAM_HTTP',
    statusCode: undefined,
    message: 'fastify-cqrs-stream: the event stream could not be opened (see the browser console for the HTTP status).',
  })
  t.equal(requests.length, 1)
})

t.test('through an EventSource: a foreign frame fails the stream, duplicates and unknown types are skipped', async (t) => {
  const { app, start, requests } = await clientApp(t)
  app.get('/foreign', (_request, reply) => rawStream(reply, 'retry: 10\n' +
    frames('s', [{ type: 'start', streamId: 's' }, { type: 'progress', data: 1 }]) +
    frames('s', [{ type: 'progress', data: 'again' }, { type: 'checkpoint' }], 1) +
    'id: s:3\ndata: hello\n\n'))
  const base = await start()
  const received: StreamFrame[] = []
  const error = await rejection((async () => {
    for await (const frame of streamCommand(`${base}/foreign`, { EventSource })) received.push(frame)
  })())
  t.same(received, [{ type: 'start', streamId: 's', id: 's:0' }, { type: 'progress', data: 1, id: 's:1' }])
  t.match(error, { code: 'FST_ERR_CQRS_STREAM_PROTOCOL' })
  await sleep(GRACE_MS)
  t.equal(requests.length, 1, 'the EventSource was closed')
})

t.test('two-step with an EventSource: the GET of the 202 url goes through it', async (t) => {
  const { app, start, requests } = await clientApp(t)
  app.post('/orders', (_request, reply) => reply.code(202).send({ streamId: 'o1', url: '/orders/o1' }))
  app.get('/orders/:id', (_request, reply) => reply.eventStream(items({ n: 1 }), { streamId: 'o1' }))
  const base = await start()
  let constructed = 0
  class CountingEventSource extends EventSource {
    constructor (url: string) {
      super(url)
      constructed++
    }
  }
  const received = await collect(streamCommand(`${base}/orders`, { body: { orderIds: ['a'] }, EventSource: CountingEventSource }))
  t.same(received.map((frame) => frame.id), ['o1:0', 'o1:1', 'o1:2'])
  t.equal(constructed, 1)
  t.match(requests, [{ method: 'POST', url: '/orders' }, { method: 'GET', url: '/orders/o1', headers: { accept: 'text/event-stream' } }])
})
