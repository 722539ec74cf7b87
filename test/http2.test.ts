// Everything over TLS and HTTP/2 (`Fastify({ http2: true, https })`), with
// Node's http2 client: stream routes, heartbeats, a client that leaves,
// resume, two-step, cancel, backpressure and app.close(). Each stream is an
// HTTP/2 stream of one session: leaving closes the stream, not the socket.
import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2'
import { asValue, createContainer } from 'awilix'
import Fastify from 'fastify'
import t from 'tap'
import cqrsStream from '../src/index.js'
import { PadsCommand, PadsHandler } from './fixtures/redis-apps.js'
import { eventually, within } from './fixtures/sse-client.js'
import { SseParser } from './fixtures/sse-parser.js'
import { Pacer, TicksCommand, TicksHandler } from './fixtures/ticks-app.js'
import { testCertificate } from './fixtures/tls.js'

interface H2Stream {
  readonly headers: Promise<IncomingHttpHeaders>
  readonly parser: SseParser
  readonly body: () => string
  /** Settles when the server ends the stream. */
  readonly ended: Promise<string>
  until (predicate: () => boolean, label: string): Promise<void>
  /** Leave: RST_STREAM with CANCEL, as a browser closing an EventSource does. */
  close (): void
  pause (): void
  resume (): void
}

function h2Request (session: ClientHttp2Session, path: string, options: { method?: string, body?: string, headers?: Record<string, string> } = {}): H2Stream {
  const req = session.request({
    ':method': options.method ?? 'GET',
    ':path': path,
    accept: 'text/event-stream',
    ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...options.headers,
  })
  const parser = new SseParser()
  let body = ''
  const waiters = new Set<() => void>()
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => {
    body += chunk
    parser.push(chunk)
    for (const waiter of waiters) waiter()
  })
  const headers = new Promise<IncomingHttpHeaders>((resolve) => req.once('response', resolve))
  const ended = new Promise<string>((resolve, reject) => {
    req.on('end', () => resolve(body))
    req.on('error', reject)
  })
  ended.catch(() => {})
  req.end(options.body)
  return {
    headers,
    parser,
    body: () => body,
    ended,
    until (predicate, label) {
      if (predicate()) return Promise.resolve()
      let waiter!: () => void
      const reached = new Promise<void>((resolve) => { waiter = () => { if (predicate()) resolve() } })
      waiters.add(waiter)
      return within(reached, label).finally(() => waiters.delete(waiter))
    },
    close: () => { req.close(constants.NGHTTP2_CANCEL) },
    pause: () => { req.pause() },
    resume: () => { req.resume() },
  }
}

async function h2App (t: { teardown (fn: () => unknown): void }, heartbeatMs = 0) {
  const { key, cert } = await testCertificate()
  const pacer = new Pacer()
  const app = Fastify({ http2: true, https: { key, cert, allowHTTP1: true } })
  t.teardown(() => app.close())
  await app.register(cqrsStream, {
    container: createContainer({ strict: true }).register({ pacer: asValue(pacer) }),
    requests: (map) => map.bind(TicksCommand, TicksHandler).bind(PadsCommand, PadsHandler),
    heartbeatMs,
  })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  app.streamRoute({ method: 'GET', url: '/plain', request: TicksCommand })
  app.streamRoute({ method: 'POST', url: '/jobs', request: TicksCommand, twoStep: true })
  app.streamRoute({ method: 'GET', url: '/pads', request: PadsCommand })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const session = connect(`https://127.0.0.1:${port}`, { ca: cert })
  session.on('error', () => {})
  // Closed before the app, so that app.close() does not wait for it.
  t.teardown(() => { session.destroy() })
  return { app, pacer, session, port }
}

const dataOf = (stream: H2Stream): unknown[] => stream.parser.frames.map((frame) => JSON.parse(frame.data))

t.test('a stream route over HTTP/2: every frame, SSE headers and no connection-level header', async (t) => {
  const { session } = await h2App(t)
  const stream = h2Request(session, '/plain?count=2')
  const headers = await stream.headers
  t.equal(headers[':status'], 200)
  t.equal(headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(headers['cache-control'], 'no-cache, no-transform')
  t.equal(headers.connection, undefined, 'HTTP/2 forbids connection headers')
  await stream.ended
  t.match(dataOf(stream), [{ type: 'start' }, { type: 'progress', data: { n: 0 } }, { type: 'progress', data: { n: 1 } }, { type: 'complete' }])
  t.equal(dataOf(stream).length, 4)
})

t.test('heartbeats flow on an idle HTTP/2 stream', async (t) => {
  const { session, pacer } = await h2App(t, 20)
  pacer.hold()
  const stream = h2Request(session, '/plain?count=1')
  await stream.until(() => stream.parser.comments >= 3, 'three heartbeats')
  pacer.release()
  await stream.ended
  t.match(stream.body(), /\n\n(?::\n)+id: /)
})

t.test('a client that closes its HTTP/2 stream aborts the handler; the session goes on', async (t) => {
  const { session, pacer } = await h2App(t)
  pacer.hold()
  pacer.release(1)
  const stream = h2Request(session, '/plain?count=5')
  await stream.until(() => stream.parser.frames.length === 2, 'the first progress frame')
  stream.close()
  await eventually(() => pacer.aborts === 1, 'the handler to be aborted')
  t.equal(pacer.finished, 1)
  pacer.release()
  const next = h2Request(session, '/plain?count=1')
  await next.ended
  t.equal(dataOf(next).length, 3, 'the same session serves the next stream')
})

t.test('resume over HTTP/2: a new stream with Last-Event-ID gets the missed frames once', async (t) => {
  const { session, pacer } = await h2App(t)
  pacer.hold()
  pacer.release(1)
  const first = h2Request(session, '/ticks?count=3')
  await first.until(() => first.parser.frames.length === 2, 'one progress frame')
  const { streamId } = dataOf(first)[0] as { streamId: string }
  first.close()
  pacer.release(1)
  await eventually(() => pacer.yielded === 2, 'a frame while away')
  const again = h2Request(session, '/ticks?count=3', { headers: { 'last-event-id': `${streamId}:1` } })
  await again.until(() => again.parser.frames.length === 1, 'the missed frame')
  pacer.release()
  await again.ended
  t.same(again.parser.frames.map((frame) => frame.id), [`${streamId}:2`, `${streamId}:3`, `${streamId}:4`])
  t.equal(pacer.runs, 1)
})

t.test('two-step and cancel over HTTP/2', async (t) => {
  const { session, pacer } = await h2App(t)
  const posted = h2Request(session, '/jobs', { method: 'POST', body: '{"count":3}' })
  t.equal((await posted.headers)[':status'], 202)
  const { url } = JSON.parse(await posted.ended) as { url: string }
  pacer.hold()
  pacer.release(1)
  const stream = h2Request(session, url)
  await stream.until(() => stream.parser.frames.length === 2, 'one progress frame')
  const cancel = h2Request(session, url, { method: 'DELETE' })
  t.equal((await cancel.headers)[':status'], 204)
  await stream.ended
  t.match(dataOf(stream).at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_CANCELLED' } })
  t.equal(pacer.aborts, 1)
})

t.test('backpressure over HTTP/2: a client that stops reading stops the handler (flow control)', async (t) => {
  const { app, session, pacer } = await h2App(t)
  const stream = h2Request(session, '/pads?count=100000&size=1000')
  stream.pause()
  await eventually(() => pacer.yielded > 0, 'the first frames')
  // HTTP/2's window (64 KB) and the stream's buffers fill, then the handler waits.
  let last = -1
  await eventually(() => {
    const settled = pacer.yielded === last
    last = pacer.yielded
    return settled
  }, 'the handler to stop being pulled')
  t.ok(pacer.yielded < 1000, `${pacer.yielded} frames of 1 KB pulled while the client reads nothing`)
  stream.close()
  await eventually(() => app.streamStats().openStreams === 0, 'the stream to end')
})

t.test('app.close() ends open HTTP/2 streams with a shutdown frame', async (t) => {
  const { app, session, pacer } = await h2App(t)
  pacer.hold()
  const stream = h2Request(session, '/plain?count=5')
  await stream.until(() => stream.parser.frames.length === 1, 'the start frame')
  session.close()
  await app.close()
  await stream.ended.catch(() => {})
  t.match(dataOf(stream).at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_SHUTDOWN' } })
})
