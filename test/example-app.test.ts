import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tlsFromEnv } from '../example-app/tls.js'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../example-app/app.js'
import { main, orderLines } from '../example-app/client.js'
import { OrderService } from '../example-app/services.js'
import { InMemoryMessageBroker } from '../src/index.js'

// The example app (`npm start`) as its users see it: whole SSE frames over
// inject, and over a real socket where a disconnect or a shutdown matters.

interface Frame {
  id: string
  data: Record<string, unknown>
}

/** Parses complete SSE frames (`id:`, a `retry:` on start frames, one `data:` line); returns the rest. */
function parseFrames (text: string): { frames: Frame[], rest: string } {
  const blocks = text.split('\n\n')
  const rest = blocks.pop() ?? ''
  const frames = blocks.map((block) => {
    const lines = block.split('\n')
    const id = lines.find((line) => line.startsWith('id: '))?.slice(4)
    const data = lines.filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n')
    const expected = lines.some((line) => line.startsWith('retry: ')) ? 3 : 2
    if (id === undefined || lines.length !== expected) throw new Error(`unexpected frame: ${JSON.stringify(block)}`)
    return { id, data: JSON.parse(data) as Record<string, unknown> }
  })
  return { frames, rest }
}

const DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

function progressOf (orderId: string): Record<string, unknown> {
  return {
    type: 'progress',
    data: { orderId, status: 'processed', processedAt: DATE_TIME, itemsCount: 1 + (orderId.length % 5) },
  }
}

/** Opens a real GET stream; resolves with the response once headers arrive. */
function openStream (app: FastifyInstance, path: string): Promise<IncomingMessage> {
  const { port } = app.server.address() as AddressInfo
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream' } }, resolve)
      .on('error', reject)
      .end()
  })
}

/** Calls `onFrame` for each frame as it arrives; resolves with all frames at the end of the body. */
function readFrames (res: IncomingMessage, onFrame: (frame: Frame) => void): Promise<Frame[]> {
  return new Promise((resolve, reject) => {
    const all: Frame[] = []
    let buffer = ''
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      const { frames, rest } = parseFrames(buffer + chunk)
      buffer = rest
      for (const frame of frames) {
        all.push(frame)
        onFrame(frame)
      }
    })
    res.on('end', () => resolve(all))
    res.on('error', reject)
  })
}

t.test('POST /orders/process streams start, one progress frame per order, complete', async (t) => {
  const broker = new InMemoryMessageBroker()
  const app = await buildApp({ orderDelayMs: 1, broker })
  t.teardown(() => app.close())

  const res = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a', 'b'] } })

  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-cache, no-transform')
  t.equal(res.headers['x-accel-buffering'], 'no')
  const { frames, rest } = parseFrames(res.body)
  t.equal(rest, '', 'the body ends with a whole frame')
  t.equal(frames.length, 4)
  const streamId = frames[0]!.data.streamId
  t.match(streamId, UUID)
  t.same(frames.map((frame) => frame.id), [0, 1, 2, 3].map((seq) => `${String(streamId)}:${seq}`))
  t.same(frames[0]!.data, { type: 'start', streamId, cancelUrl: `/orders/process/${String(streamId)}` })
  t.match(res.body, /^id: [^\n]+:0\nretry: 1000\n/, 'resumable streams tell EventSource to come back after 1 s')
  t.match(frames[1]!.data, progressOf('a'))
  t.match(frames[2]!.data, progressOf('b'))
  t.same(Object.keys(frames[1]!.data.data as object), ['orderId', 'status', 'processedAt', 'itemsCount'])
  t.same(frames[3]!.data, { type: 'complete' })

  // OrderProcessedHandler's follow-up went to the broker, once per order, in order.
  t.match(broker.messages, [
    { messageName: 'OrderShipped', topic: 'orders.shipped', payload: { orderId: 'a' }, messageId: UUID },
    { messageName: 'OrderShipped', topic: 'orders.shipped', payload: { orderId: 'b' }, messageId: UUID },
  ])
  t.equal(broker.messages.length, 2)
})

t.test('GET /orders/process takes the command from the query string (EventSource)', async (t) => {
  const broker = new InMemoryMessageBroker()
  const app = await buildApp({ orderDelayMs: 1, broker })
  t.teardown(() => app.close())

  const res = await app.inject({ method: 'GET', url: '/orders/process?orderIds=a&orderIds=bb&orderIds=ccc' })

  t.equal(res.statusCode, 200)
  const { frames } = parseFrames(res.body)
  t.same(frames.map((frame) => frame.data.type), ['start', 'progress', 'progress', 'progress', 'complete'])
  t.match(frames.slice(1, 4).map((frame) => frame.data), ['a', 'bb', 'ccc'].map(progressOf))
  t.same(broker.messages.map((message) => message.payload), [{ orderId: 'a' }, { orderId: 'bb' }, { orderId: 'ccc' }])

  // A single orderIds value is coerced to a one-item array by the route schema.
  const one = await app.inject({ method: 'GET', url: '/orders/process?orderIds=z' })
  t.same(parseFrames(one.body).frames.map((frame) => frame.data.type), ['start', 'progress', 'complete'])
})

t.test('npm run client: the typed client in Node, a relative url against baseUrl', async (t) => {
  const app = await buildApp({ orderDelayMs: 1 })
  t.teardown(() => app.close())
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const lines: string[] = []
  for await (const line of orderLines(address, ['a', 'bb'])) lines.push(line)
  t.match(lines, [/^stream [0-9a-f-]{36}$/, 'a: processed, 2 item(s)', 'bb: processed, 3 item(s)', 'complete'])
  t.equal(lines.length, 4)

  // The script's main(): its output, the default order ids, and a coded error with exit code 1.
  const printed: unknown[] = []
  const out = { log: (line: unknown) => { printed.push(line) }, error: (line: unknown) => { printed.push(`error: ${String(line)}`) } }
  t.equal(await main([], address, out), 0)
  t.same(printed.slice(1), ['a: processed, 2 item(s)', 'b: processed, 2 item(s)', 'c: processed, 2 item(s)', 'complete'])
  printed.length = 0
  t.equal(await main([''], address, out), 1, 'an invalid command')
  t.match(printed, [/^error: FST_ERR_VALIDATION: body\/orderIds\/0 must NOT have fewer than 1 characters/])
  printed.length = 0
  t.equal(await main(['a'], 'not a url', out), 1)
  t.match(printed, ['error: FST_ERR_CQRS_STREAM_INVALID_URL: fastify-cqrs-stream: baseUrl must be an absolute url, got "not a url".'])
  printed.length = 0
  // Nothing listens there: fetch's own error, printed as it is.
  t.equal(await main(['a'], 'http://127.0.0.1:9', out), 1, 'no server')
  t.match(printed, [/^error: TypeError: fetch failed/])
})

t.test('an invalid command is rejected with 400 before any stream starts', async (t) => {
  const broker = new InMemoryMessageBroker()
  const app = await buildApp({ orderDelayMs: 1, broker })
  t.teardown(() => app.close())

  for (const payload of [{ orderIds: [] }, { orderIds: [''] }, { orderIds: Array.from({ length: 101 }, (_, i) => `o${i}`) }, {}]) {
    const res = await app.inject({ method: 'POST', url: '/orders/process', payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 40))
    t.equal(res.json().code, 'FST_ERR_VALIDATION')
  }
  const res = await app.inject({ method: 'GET', url: '/orders/process' })
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'FST_ERR_VALIDATION')
  t.equal(broker.messages.length, 0, 'no handler ran')
})

t.test('GET / serves the demo page, which streams the GET route with the typed client', async (t) => {
  const app = await buildApp({ orderDelayMs: 1 })
  t.teardown(() => app.close())

  const res = await app.inject({ method: 'GET', url: '/' })

  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8')
  t.match(res.body, /^<!doctype html>/)
  t.match(res.body, "import { streamCommand } from '/client/index.js'")
  t.match(res.body, "streamCommand('/orders/process?' + query, {")
  for (const testId of ['order-ids', 'start', 'cancel', 'progress', 'progress-text', 'status', 'reconnecting', 'error', 'results']) {
    t.match(res.body, `data-testid="${testId}"`, testId)
  }
  t.match(res.body, 'value="a,b,c,d,e,f,g,h"', 'the default order ids')
})

t.test('GET /client/<file>.js serves the client as browser JavaScript, every import included', async (t) => {
  const app = await buildApp({ orderDelayMs: 1 })
  t.teardown(() => app.close())

  const seen = new Set<string>()
  const pending = ['index.js']
  while (pending.length > 0) {
    const file = pending.pop()!
    seen.add(file)
    const res = await app.inject({ method: 'GET', url: `/client/${file}` })
    t.equal(res.statusCode, 200, file)
    t.equal(res.headers['content-type'], 'text/javascript; charset=utf-8', file)
    t.notMatch(res.body, /\binterface\b|\bimport type\b|\bexport type\b|: string\b/, `${file} holds no TypeScript`)
    for (const [, specifier] of res.body.matchAll(/\bfrom '([^']+)'/g)) {
      t.match(specifier, /^\.\/[\w-]+\.js$/, `${file} imports ${specifier!}`)
      const imported = specifier!.slice(2)
      if (!seen.has(imported) && !pending.includes(imported)) pending.push(imported)
    }
  }
  t.ok(seen.has('stream-command.js') && seen.has('sse-line-parser.js'), [...seen].join(', '))
  const index = await app.inject({ method: 'GET', url: '/client/index.js' })
  t.match(index.body, /export \{ streamCommand \} from '\.\/stream-command\.js'/)

  const missing = await app.inject({ method: 'GET', url: '/client/nope.js' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().message, 'Route GET:/client/nope.js not found')
})

t.test('options: an order service of the caller\'s, and a retry hint for EventSource', async (t) => {
  const orders = new OrderService({ orderDelayMs: 1 })
  const processed: string[] = []
  const spy = Object.assign(orders, {
    process: (orderId: string, context: { signal: AbortSignal }) => {
      processed.push(orderId)
      return OrderService.prototype.process.call(orders, orderId, context)
    },
  })
  const app = await buildApp({ orderDelayMs: 60_000, orders: spy, retryMs: 250 })
  t.teardown(() => app.close())

  const res = await app.inject({ method: 'GET', url: '/orders/process?orderIds=a&orderIds=b' })
  const { frames } = parseFrames(res.body.replace(/^retry: 250\n/m, ''))
  t.same(frames.map((frame) => frame.data.type), ['start', 'progress', 'progress', 'complete'], 'the 1 ms service, not a 60 s one')
  t.same(processed, ['a', 'b'])
  t.match(res.body, /^id: [^\n]+:0\nretry: 250\ndata: /, 'the start frame carries the hint')
})

t.test('a client that leaves can come back; its cancel URL stops the order in progress at once', async (t) => {
  const broker = new InMemoryMessageBroker()
  // Far longer than the test may take: the stream can only end early if the
  // delay honours the stream's abort signal.
  const app = await buildApp({ orderDelayMs: 60_000, broker })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })

  const res = await openStream(app, '/orders/process?orderIds=a&orderIds=b')
  t.equal(res.statusCode, 200)
  const first = await new Promise<Frame>((resolve) => {
    readFrames(res, resolve).catch(() => {})
  })
  t.equal(first.data.type, 'start')
  t.equal(app.mediator.openStreams, 1, 'order a is being processed')
  res.destroy()
  await sleep(100)
  t.equal(app.mediator.openStreams, 1, 'the resumable stream waits for its client')

  const cancel = await app.inject({ method: 'DELETE', url: String(first.data.cancelUrl) })
  t.equal(cancel.statusCode, 204)
  // The stream ends (handler returned, scope disposed) only once the handler has stopped.
  for (let waited = 0; app.mediator.openStreams > 0; waited += 5) {
    if (waited > 10_000) throw new Error('the stream did not end after the cancel')
    await sleep(5)
  }
  t.same(broker.messages, [], 'no order was completed')
})

t.test('POST /orders accepts a command in two steps: 202, then GET its url', async (t) => {
  const app = await buildApp({ orderDelayMs: 1 })
  t.teardown(() => app.close())
  const accepted = await app.inject({ method: 'POST', url: '/orders', payload: { orderIds: ['a', 'b'] } })
  t.equal(accepted.statusCode, 202)
  const { streamId, url } = accepted.json<{ streamId: string, url: string }>()
  t.equal(url, `/orders/${streamId}`)
  const res = await app.inject({ method: 'GET', url })
  const { frames } = parseFrames(res.body)
  t.same(frames.map((frame) => frame.data.type), ['start', 'progress', 'progress', 'complete'])
  t.equal(frames[0]!.data.streamId, streamId)
})

t.test('app.close() ends an open stream with a shutdown error frame', async (t) => {
  const app = await buildApp({ orderDelayMs: 60_000 })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })

  const res = await openStream(app, '/orders/process?orderIds=a&orderIds=b')
  let closing: Promise<undefined> | undefined
  const frames = await readFrames(res, (frame) => {
    if (frame.data.type === 'start') closing = app.close()
  })
  await closing

  t.same(frames.map((frame) => frame.data.type), ['start', 'error'])
  t.same(frames.map((frame) => frame.id), [0, 1].map((seq) => `${String(frames[0]!.data.streamId)}:${seq}`))
  t.same(Object.keys(frames[1]!.data), ['type', 'error'])
  t.same(Object.keys(frames[1]!.data.error as object), ['code', 'message'])
  t.match(frames[1]!.data, { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_SHUTDOWN', message: /^fastify-cqrs-stream: / } })
  t.equal(app.mediator.openStreams, 0)
})

t.test('HTTPS=1: the example over HTTPS and HTTP/2, with a generated certificate or TLS_KEY and TLS_CERT', async (t) => {
  t.equal(await tlsFromEnv({}), undefined, 'plain HTTP by default')
  const made = await tlsFromEnv({ HTTPS: '1' })
  t.match(made, { key: /BEGIN PRIVATE KEY/, cert: /BEGIN CERTIFICATE/ })
  const dir = await mkdtemp(join(tmpdir(), 'tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'key.pem'), made!.key)
  await writeFile(join(dir, 'cert.pem'), made!.cert)
  const tls = await tlsFromEnv({ HTTPS: 'true', TLS_KEY: join(dir, 'key.pem'), TLS_CERT: join(dir, 'cert.pem') })
  t.same(tls, made, 'read from the files')

  const app = await buildApp({ orderDelayMs: 1, tls })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const session = connect(`https://127.0.0.1:${port}`, { ca: tls!.cert })
  t.teardown(() => { session.destroy() })
  const body = await new Promise<string>((resolve, reject) => {
    const req = session.request({ ':path': '/orders/process?orderIds=a', accept: 'text/event-stream' })
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => { text += chunk })
    req.on('end', () => resolve(text))
    req.on('error', reject)
    req.end()
  })
  t.match(body, /"type":"progress".*"type":"complete"/s, 'a stream over HTTP/2')
})
