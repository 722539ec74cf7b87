import { once } from 'node:events'
import { Type } from '@sinclair/typebox'
import { asValue, createContainer } from 'awilix'
import Fastify from 'fastify'
import t from 'tap'
import cqrsStream, {
  errors, fastifyCqrsStream, Request, StreamingRequestHandler, StreamingRequestMediator,
  type FastifyCqrsStreamOptions, type StreamContext,
} from '../src/index.js'
import { ordersApp } from './fixtures/app-orders.js'
import { complete, error, listen, openStream, progress, sseText, start, streamIdOf, within } from './fixtures/app-sse.js'
import { OrderProcessedResult, ProcessOrdersCommand, resultOf } from './fixtures/orders-domain.js'

/** Log lines of an app whose logger writes JSON to an array. */
function logCapture (): { lines: Array<Record<string, unknown>>, logger: { level: string, stream: { write (line: string): void } } } {
  const lines: Array<Record<string, unknown>> = []
  return { lines, logger: { level: 'warn', stream: { write: (line) => { lines.push(JSON.parse(line)) } } } }
}

// A handler that reports what happened to it: it yields once, then waits
// for its signal (or, with `ignoreSignal`, for `stuck`, which the test
// releases at the end).
class WatchCommand extends Request(Type.Object({ name: Type.String() })) {}

interface Probe {
  started: () => void
  finallyRan: boolean
  signal: AbortSignal | undefined
  ignoreSignal: boolean
  stuck: Promise<void>
}

function probe (ignoreSignal = false): { probe: Probe, started: Promise<void>, unstick: () => void } {
  let started!: () => void
  let unstick!: () => void
  const startedPromise = new Promise<void>((resolve) => { started = resolve })
  const stuck = new Promise<void>((resolve) => { unstick = resolve })
  return { probe: { started, finallyRan: false, signal: undefined, ignoreSignal, stuck }, started: startedPromise, unstick }
}

class WatchHandler extends StreamingRequestHandler<WatchCommand, { tick: number }> {
  readonly #probe: Probe

  constructor ({ probe }: { probe: Probe }) {
    super()
    this.#probe = probe
  }

  async * handle (_command: WatchCommand, { signal }: StreamContext): AsyncGenerator<{ tick: number }> {
    const probe = this.#probe
    probe.signal = signal
    try {
      yield { tick: 0 }
      probe.started()
      if (probe.ignoreSignal) await probe.stuck
      else await once(signal, 'abort').catch(() => {})
      yield { tick: 1 }
    } finally {
      probe.finallyRan = true
    }
  }
}

function watchOptions (probe: Probe, extra: FastifyCqrsStreamOptions = {}): FastifyCqrsStreamOptions {
  return {
    container: createContainer().register({ probe: asValue(probe) }),
    requests: (map) => map.bind(WatchCommand, WatchHandler),
    heartbeatMs: 0,
    ...extra,
  }
}

t.test('the plugin is a fastify-plugin named fastify-cqrs-stream, default and named export', async (t) => {
  t.equal(cqrsStream, fastifyCqrsStream)
  const meta = cqrsStream as unknown as Record<symbol, unknown>
  t.same(meta[Symbol.for('plugin-meta')], { fastify: '5.x', name: 'fastify-cqrs-stream' })
  t.equal(meta[Symbol.for('fastify.display-name')], 'fastify-cqrs-stream')
  t.equal(meta[Symbol.for('skip-override')], true, 'decorators reach the parent context')
})

t.test('registering decorates app.mediator, app.streamRoute and reply.eventStream on the registering context', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  // fastify-plugin skips encapsulation: the decorators land on `app` itself.
  await app.register(cqrsStream, { heartbeatMs: 0 })
  t.ok(app.hasDecorator('mediator'))
  t.ok(app.hasDecorator('streamRoute'))
  t.ok(app.hasReplyDecorator('eventStream'))
  t.type(app.mediator, StreamingRequestMediator)
  t.type(app.streamRoute, 'function')

  app.get('/ticks', (_request, reply) => reply.eventStream(async function * () { yield { tick: 0 } }, { streamId: 's1' }))
  const res = await app.inject({ method: 'GET', url: '/ticks' })
  t.equal(res.statusCode, 200)
  t.equal(res.body, sseText('s1', [start('s1'), progress({ tick: 0 }), complete()]))
})

t.test('each app gets its own mediator; closing one leaves the other working', async (t) => {
  const one = await ordersApp(t)
  const two = await ordersApp(t)
  t.not(one.app.mediator, two.app.mediator)
  await one.app.close()
  const results: unknown[] = []
  for await (const result of two.app.mediator.stream(new ProcessOrdersCommand({ orderIds: ['a'] }))) results.push(result)
  t.same(results, [resultOf('a')])
  t.same(two.orders.recorded, ['a'], 'the event handler ran')
  t.same(two.broker.messages.map((m) => [m.messageName, m.topic, m.payload]), [['OrderShipped', 'orders.shipped', { orderId: 'a' }]])
})

t.test('registering twice, or on an app that already has a mediator, fails to boot', async (t) => {
  const twice = Fastify()
  t.teardown(() => twice.close())
  twice.register(cqrsStream)
  twice.register(cqrsStream)
  await t.rejects(async () => { await twice.ready() }, { code: 'FST_ERR_DEC_ALREADY_PRESENT' })

  const taken = Fastify()
  t.teardown(() => taken.close())
  taken.decorate('mediator', new StreamingRequestMediator())
  taken.register(cqrsStream)
  await t.rejects(async () => { await taken.ready() }, { code: 'FST_ERR_DEC_ALREADY_PRESENT' })
})

t.test('invalid plugin options: app.ready() rejects with FST_ERR_CQRS_STREAM_INVALID_OPTION naming the option', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['heartbeatMs', { heartbeatMs: -1 }],
    ['heartbeatMs', { heartbeatMs: 1.5 }],
    ['heartbeatMs', { heartbeatMs: '100' }],
    ['closeTimeoutMs', { closeTimeoutMs: 'x' }],
    ['closeTimeoutMs', { closeTimeoutMs: -5 }],
    ['namedEvents', { namedEvents: 'yes' }],
    ['retryMs', { retryMs: 1.5 }],
    ['container', { container: {} }],
    ['container', { container: 'c' }],
    ['requests', { requests: 'x' }],
    ['events', { events: 1 }],
    ['messageBroker', { messageBroker: {} }],
    ['maxConcurrentEventHandlers', { maxConcurrentEventHandlers: 0 }],
    ['maxConcurrentEventHandlers', { maxConcurrentEventHandlers: 2.5 }],
    ['concurrentEventHandling', { concurrentEventHandling: 'no' }],
    ['middlewares', { middlewares: [1] }],
    ['eventHandlerFailure', { eventHandlerFailure: 'crash' }],
    ['onEventHandlerError', { onEventHandlerError: 'x' }],
    ['logger', { logger: {} }],
  ]
  for (const [name, options] of cases) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(cqrsStream, options as FastifyCqrsStreamOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: new RegExp(`"${name}"`) },
      `${name}: ${JSON.stringify(options)}`)
  }
})

t.test('plugin options that are not an object fail to boot', async (t) => {
  for (const options of ['x', 5, () => null]) {
    const app = Fastify()
    t.teardown(() => app.close())
    app.register(cqrsStream, options as unknown as FastifyCqrsStreamOptions)
    await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /"options"/ }, String(options))
  }
})

t.test('valid edge values boot: zeros, Infinity, empty middlewares', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(cqrsStream, {
    heartbeatMs: 0,
    retryMs: 0,
    closeTimeoutMs: 0,
    namedEvents: false,
    maxConcurrentEventHandlers: Infinity,
    concurrentEventHandling: false,
    middlewares: [],
    eventHandlerFailure: 'fail-stream',
  })
  await t.resolves(async () => { await app.ready() })
})

t.test('plugin SSE defaults (namedEvents, retryMs) apply to reply.eventStream and streamRoute; route settings override them', async (t) => {
  const { app } = await ordersApp(t, { namedEvents: true, retryMs: 3000 })
  app.get('/ticks', (_request, reply) => reply.eventStream([{ tick: 0 }].values() as unknown as AsyncIterable<unknown>, { streamId: 't' }))
  app.get('/async-ticks', (_request, reply) => reply.eventStream((async function * () { yield { tick: 0 } })(), { streamId: 't' }))
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  app.streamRoute({
    method: 'POST',
    url: '/orders/plain',
    request: ProcessOrdersCommand,
    response: OrderProcessedResult,
    eventStream: { namedEvents: false, retryMs: 500 },
  })

  const bad = await app.inject({ method: 'GET', url: '/ticks' })
  t.equal(bad.statusCode, 500, 'a sync iterator is not a source')
  t.equal(bad.json().code, 'FST_ERR_CQRS_STREAM_INVALID_SOURCE')

  const ticks = await app.inject({ method: 'GET', url: '/async-ticks' })
  t.equal(ticks.body, sseText('t', [{ ...start('t'), retry: 3000 }, progress({ tick: 0 }), complete()], true))

  const named = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a'] } })
  const sid = streamIdOf(named.body)
  t.equal(named.body, sseText(sid, [{ ...start(sid), retry: 3000 }, progress(resultOf('a')), complete()], true))

  const plain = await app.inject({ method: 'POST', url: '/orders/plain', payload: { orderIds: ['a'] } })
  const plainId = streamIdOf(plain.body)
  t.equal(plain.body, sseText(plainId, [{ ...start(plainId), retry: 500 }, progress(resultOf('a')), complete()]))
})

t.test('the heartbeatMs plugin option sends comment lines on an idle stream', async (t) => {
  const { app, orders } = await ordersApp(t, { heartbeatMs: 20 })
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const base = await listen(app)
  const held = orders.hold('a')
  const res = await openStream(`${base}/orders/process`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orderIds: ['a'] }),
  })
  await held.reached
  const sid = streamIdOf(await res.waitFor('\n\n'))
  await within(res.waitFor('\n\n:\n'), 5000, 'heartbeat')
  held.release()
  const body = await res.ended
  t.equal(body.replace(/^:\n/gm, ''), sseText(sid, [start(sid), progress(resultOf('a')), complete()]))
})

t.test('the mediator logs to app.log when no logger option is given', async (t) => {
  const capture = logCapture()
  const { app, orders } = await ordersApp(t, {}, { logger: capture.logger })
  orders.failEventsOf('a')
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const res = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a'] } })
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress(resultOf('a')), complete()]), 'isolated: the stream goes on')
  const logged = capture.lines.find((line) => line.handlerName === 'OrderProcessedHandler')
  t.match(logged, { level: 50, eventName: 'OrderProcessedEvent', streamId: sid, err: { message: 'ledger rejected a' } })
})

t.test('app.close() during an open stream ends it with a shutdown error frame, aborts the handler and resolves', async (t) => {
  const { probe: p, started } = probe()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(cqrsStream, watchOptions(p))
  app.streamRoute({ method: 'GET', url: '/watch', request: WatchCommand })
  const base = await listen(app)
  const res = await openStream(`${base}/watch?name=x`)
  await started
  const sid = streamIdOf(res.text)
  t.equal(app.mediator.openStreams, 1)

  await within(app.close(), 5000, 'app.close()')
  t.equal(await res.ended, sseText(sid, [start(sid), progress({ tick: 0 }), error('FST_ERR_CQRS_STREAM_SHUTDOWN', new errors.ShutdownError().message)]))
  t.equal(p.finallyRan, true, "the handler's finally ran")
  t.equal(p.signal?.aborted, true, "the handler's signal aborted")
  t.equal(app.mediator.openStreams, 0)
})

t.test('app.close() resolves after closeTimeoutMs when a handler ignores its signal', async (t) => {
  const { probe: p, started, unstick } = probe(true)
  const capture = logCapture()
  const app = Fastify({ logger: capture.logger })
  t.teardown(() => app.close())
  await app.register(cqrsStream, watchOptions(p, { closeTimeoutMs: 30 }))
  app.streamRoute({ method: 'GET', url: '/watch', request: WatchCommand })
  const base = await listen(app)
  const res = await openStream(`${base}/watch?name=x`)
  await started
  const sid = streamIdOf(res.text)

  await within(app.close(), 5000, 'app.close()')
  t.equal(await res.ended, sseText(sid, [start(sid), progress({ tick: 0 }), error('FST_ERR_CQRS_STREAM_SHUTDOWN', new errors.ShutdownError().message)]),
    'the client got the shutdown frame regardless')
  t.equal(p.finallyRan, false, 'the handler is still stuck')
  t.equal(p.signal?.aborted, true, 'though its signal was aborted')
  t.match(capture.lines, [{ level: 40, err: { code: 'FST_ERR_CQRS_STREAM_CLOSE_TIMEOUT' } }])

  unstick()
  await within(new Promise<void>((resolve) => {
    const check = (): void => { if (p.finallyRan) resolve(); else setImmediate(check) }
    check()
  }), 5000, 'the stuck handler finishing')
  t.equal(app.mediator.openStreams, 0, 'once unstuck, the stream cleans up')
})

t.test('a stream that starts while the app is closing ends at once with the shutdown frame', async (t) => {
  const { probe: p } = probe()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(cqrsStream, watchOptions(p))
  let arrived!: () => void
  let letThrough!: () => void
  const requestArrived = new Promise<void>((resolve) => { arrived = resolve })
  const gate = new Promise<void>((resolve) => { letThrough = resolve })
  app.streamRoute({
    method: 'GET',
    url: '/watch',
    request: WatchCommand,
    onRequest: async () => { arrived(); await gate },
  })
  let closing!: () => void
  const closingStarted = new Promise<void>((resolve) => { closing = resolve })
  app.addHook('preClose', async () => { closing() }) // runs after the plugin's preClose
  const base = await listen(app)

  const pending = openStream(`${base}/watch?name=x`)
  await requestArrived
  const closed = app.close()
  await closingStarted
  letThrough()
  const res = await pending
  const body = await res.ended
  const sid = streamIdOf(body)
  t.equal(body, sseText(sid, [start(sid), error('FST_ERR_CQRS_STREAM_SHUTDOWN', new errors.ShutdownError().message)]))
  await within(closed, 5000, 'app.close()')
  t.equal(p.signal, undefined, 'the handler was never built')
})
