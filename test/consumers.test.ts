// The clients the product is built for, each over a real socket: a raw
// HTTP client (what curl does), fetch reading the body as it streams, and
// EventSource.
import { EventSource } from 'eventsource'
import t from 'tap'
import { errors } from '../src/index.js'
import { ordersApp } from './fixtures/app-orders.js'
import { complete, error, listen, openStream, progress, sseText, start, streamIdOf, within } from './fixtures/app-sse.js'
import { OrderProcessedResult, ProcessOrdersCommand, resultOf } from './fixtures/orders-domain.js'

/** What an EventSource listener saw of one event. */
interface Seen {
  type: string
  lastEventId: string
  data: unknown
}

function seen (event: { type: string, lastEventId: string, data: unknown }): Seen {
  return { type: event.type, lastEventId: event.lastEventId, data: JSON.parse(String(event.data)) }
}

t.test('a raw HTTP client (like curl) gets the headers and the whole stream', async (t) => {
  const { app } = await ordersApp(t)
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const base = await listen(app)
  const res = await openStream(`${base}/orders/process`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ orderIds: ['a', 'bb'] }),
  })
  t.equal(res.status, 200)
  t.match(res.headers, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    'transfer-encoding': 'chunked',
  })
  t.notOk(res.headers['content-length'])
  const body = await within(res.ended, 5000, 'the response')
  const sid = streamIdOf(body)
  t.equal(body, sseText(sid, [start(sid), progress(resultOf('a')), progress(resultOf('bb')), complete()]))
})

t.test('fetch reads the frames as they are produced, before the stream ends', async (t) => {
  const { app, orders } = await ordersApp(t)
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const base = await listen(app)
  const held = orders.hold('bb')

  const res = await fetch(`${base}/orders/process`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ orderIds: ['a', 'bb'] }),
  })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let text = ''
  while (!text.includes('"orderId":"a"')) {
    const { done, value } = await within(reader.read(), 5000, 'the first progress frame')
    if (done) break
    text += value
  }
  await held.reached
  const sid = streamIdOf(text)
  t.equal(text, sseText(sid, [start(sid), progress(resultOf('a'))]), 'the first result arrived while the second is still held')

  held.release()
  for (;;) {
    const { done, value } = await within(reader.read(), 5000, 'the rest of the stream')
    if (done) break
    text += value
  }
  t.equal(text, sseText(sid, [start(sid), progress(resultOf('a')), progress(resultOf('bb')), complete()]))
})

t.test('EventSource: onmessage sees start, progress and complete of a GET streamRoute', async (t) => {
  const { app } = await ordersApp(t)
  let requests = 0
  app.streamRoute({
    method: 'GET',
    url: '/orders/process',
    request: ProcessOrdersCommand,
    response: OrderProcessedResult,
    onRequest: async () => { requests++ },
  })
  const base = await listen(app)

  const es = new EventSource(`${base}/orders/process?orderIds=a&orderIds=bb`)
  t.teardown(() => es.close())
  const messages = await within(new Promise<Seen[]>((resolve, reject) => {
    const list: Seen[] = []
    es.onmessage = (event) => {
      const message = seen(event)
      list.push(message)
      if ((message.data as { type: string }).type === 'complete') {
        es.close() // otherwise EventSource reconnects and runs the command again
        resolve(list)
      }
    }
    es.onerror = (event) => reject(new Error(`EventSource error: ${String(event.message)}`))
  }), 5000, 'the EventSource stream')

  const sid = (messages[0]!.data as { streamId: string }).streamId
  t.same(messages, [
    { type: 'message', lastEventId: `${sid}:0`, data: { type: 'start', streamId: sid } },
    { type: 'message', lastEventId: `${sid}:1`, data: { type: 'progress', data: resultOf('a') } },
    { type: 'message', lastEventId: `${sid}:2`, data: { type: 'progress', data: resultOf('bb') } },
    { type: 'message', lastEventId: `${sid}:3`, data: { type: 'complete' } },
  ])
  t.equal(es.readyState, EventSource.CLOSED)
  t.equal(requests, 1)
})

t.test('EventSource with namedEvents: addEventListener per frame type; onmessage sees nothing', async (t) => {
  const { app } = await ordersApp(t)
  app.streamRoute({
    method: 'GET',
    url: '/orders/process',
    request: ProcessOrdersCommand,
    response: OrderProcessedResult,
    eventStream: { namedEvents: true },
  })
  const base = await listen(app)

  const es = new EventSource(`${base}/orders/process?orderIds=a`)
  t.teardown(() => es.close())
  const unnamed: Seen[] = []
  es.onmessage = (event) => { unnamed.push(seen(event)) }
  const events = await within(new Promise<Seen[]>((resolve, reject) => {
    const list: Seen[] = []
    es.addEventListener('start', (event) => { list.push(seen(event)) })
    es.addEventListener('progress', (event) => { list.push(seen(event)) })
    es.addEventListener('complete', (event) => {
      list.push(seen(event))
      es.close()
      resolve(list)
    })
    es.onerror = (event) => reject(new Error(`EventSource error: ${String(event.message)}`))
  }), 5000, 'the EventSource stream')

  const sid = (events[0]!.data as { streamId: string }).streamId
  t.same(events, [
    { type: 'start', lastEventId: `${sid}:0`, data: { type: 'start', streamId: sid } },
    { type: 'progress', lastEventId: `${sid}:1`, data: { type: 'progress', data: resultOf('a') } },
    { type: 'complete', lastEventId: `${sid}:2`, data: { type: 'complete' } },
  ])
  t.same(unnamed, [])
})

t.test('EventSource with namedEvents: an error frame arrives on the error listener as a MessageEvent with data', async (t) => {
  const { app, orders } = await ordersApp(t, { logger: { error () {}, warn () {} } })
  orders.failOn('bb', new Error('internal'))
  app.streamRoute({
    method: 'GET',
    url: '/orders/process',
    request: ProcessOrdersCommand,
    response: OrderProcessedResult,
    eventStream: { namedEvents: true },
  })
  const base = await listen(app)

  const es = new EventSource(`${base}/orders/process?orderIds=a&orderIds=bb`)
  t.teardown(() => es.close())
  const frames: Seen[] = []
  es.addEventListener('start', (event) => { frames.push(seen(event)) })
  es.addEventListener('progress', (event) => { frames.push(seen(event)) })
  await within(new Promise<void>((resolve) => {
    // The same listener gets connection errors (plain Events, no data) and
    // error frames (MessageEvents with data): tell them apart by `data`.
    es.addEventListener('error', (event) => {
      if ('data' in event) {
        frames.push(seen(event as MessageEvent))
        es.close()
        resolve()
      }
    })
  }), 5000, 'the error frame')

  const sid = (frames[0]!.data as { streamId: string }).streamId
  const failed = new errors.HandlerFailedError()
  t.same(frames, [
    { type: 'start', lastEventId: `${sid}:0`, data: { type: 'start', streamId: sid } },
    { type: 'progress', lastEventId: `${sid}:1`, data: { type: 'progress', data: resultOf('a') } },
    { type: 'error', lastEventId: `${sid}:2`, data: error(failed.code, failed.message).data },
  ])
})
