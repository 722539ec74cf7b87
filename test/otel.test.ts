// fastify-cqrs-stream/otel with the SDK's in-memory span exporter and a
// metric reader: the span tree and the metrics of a completed stream, a
// failing handler, a failing event handler, a disconnect and a reconnect.
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import createError from '@fastify/error'
import diagnosticsChannel from 'node:diagnostics_channel'
import t, { type Test } from 'tap'
import fastifyCqrsStream, {
  channelNames, DomainEvent, EventHandler, InMemoryMessageBroker, NotificationEvent, Request, StreamingRequestHandler, type StreamContext,
} from '../src/index.js'
import { instrument, metricNames } from '../src/otel/index.js'
import { keyPrefix, redisInstance } from './fixtures/redis-apps.js'
import { eventually, listen, openSse, startStreamId } from './fixtures/sse-client.js'

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())

class TicksCommand extends Request(Type.Object({
  count: Type.Integer(),
  failAt: Type.Integer({ default: 0 }),
  // How the event handler fails, if it does.
  failEvent: Type.Union([Type.Literal(''), Type.Literal('error'), Type.Literal('coded'), Type.Literal('string')], { default: '' }),
  waitMs: Type.Integer({ default: 0 }),
})) {}
class Ticked extends DomainEvent(Type.Object({ n: Type.Integer(), fail: Type.String() })) {}
const CodedError = createError('TEST_ERR_TICK', 'a coded failure')
class TickAnnounced extends NotificationEvent('ticks.announced', Type.Object({ n: Type.Integer() })) {}

class TicksHandler extends StreamingRequestHandler<TicksCommand, { n: number }> {
  async * handle (command: TicksCommand, { signal }: StreamContext): AsyncGenerator<{ n: number }> {
    for (let n = 1; n <= command.count; n++) {
      if (command.waitMs > 0) await new Promise((resolve) => setTimeout(resolve, command.waitMs))
      if (signal.aborted) return
      if (n === command.failAt) throw new Error(`tick ${n} failed`)
      this.emit(new Ticked({ n, fail: command.failEvent }))
      this.emit(new TickAnnounced({ n }))
      yield { n }
    }
  }
}

/** Waits while `gate` is set: an event handler in progress. */
const steering: { gate: Promise<void> | undefined } = { gate: undefined }

class TickedHandler extends EventHandler<Ticked> {
  async handle (event: Ticked): Promise<void> {
    await steering.gate
    if (event.fail === 'error') throw new Error(`could not record tick ${event.n}`)
    if (event.fail === 'coded') throw new CodedError()
    // An event handler may throw anything.
    const notAnError: unknown = 'not an Error'
    if (event.fail === 'string') throw notAnError
  }
}

class TestReader extends MetricReader {
  protected async onForceFlush (): Promise<void> {}
  protected async onShutdown (): Promise<void> {}
}

interface Rig {
  port: number
  app: ReturnType<typeof Fastify>
  exporter: InMemorySpanExporter
  /** The spans an HTTP instrumentation would have made, one per request. */
  requestSpans: Span[]
  /** Every data point of the metric `name`. */
  points (name: string): Promise<Array<DataPoint<unknown>>>
  spans (): ReadableSpan[]
}

async function rig (t: Test): Promise<Rig> {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new TestReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const otel = instrument({ tracerProvider, meterProvider })
  t.teardown(() => { otel.uninstrument() })
  const app = Fastify()
  t.teardown(() => app.close())
  const tracer = tracerProvider.getTracer('test')
  const requestSpans: Span[] = []
  // What @fastify/otel does: the route handler runs with the request's span active.
  app.addHook('onRoute', (route) => {
    const handler = route.handler
    route.handler = function (this: unknown, request, reply) {
      const span = tracer.startSpan(`${route.method as string} ${route.url}`)
      requestSpans.push(span)
      reply.raw.once('close', () => { span.end() })
      return context.with(trace.setSpan(context.active(), span), () => (handler as (...args: unknown[]) => unknown).call(this, request, reply))
    } as typeof handler
  })
  await app.register(fastifyCqrsStream, {
    requests: (map) => map.bind(TicksCommand, TicksHandler),
    events: (map) => map.bind(Ticked, TickedHandler),
    messageBroker: new InMemoryMessageBroker(),
    heartbeatMs: 0,
  })
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand })
  app.streamRoute({ method: 'POST', url: '/resumable', request: TicksCommand, resume: true })
  app.get('/plain', (_request, reply) => reply.eventStream(async function * () { yield 1 }))
  app.get('/mediated', (_request, reply) => reply.eventStream(app.mediator.stream(new TicksCommand({ count: 1, failAt: 0, failEvent: '', waitMs: 0 }))))
  app.setNotFoundHandler((_request, reply) => reply.eventStream(async function * () { yield 1 }))
  const port = await listen(app)
  return {
    port,
    app,
    exporter,
    requestSpans,
    spans: () => exporter.getFinishedSpans(),
    async points (name) {
      const { resourceMetrics } = await reader.collect()
      return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).filter((metric) => metric.descriptor.name === name).flatMap((metric) => metric.dataPoints as Array<DataPoint<unknown>>)
    },
  }
}

const named = (spans: ReadableSpan[], name: string): ReadableSpan[] => spans.filter((span) => span.name === name)
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId

t.test('a completed stream: one SERVER span under the request\'s, with event handler and PRODUCER publish spans under it; stream metrics', async (t) => {
  const { app, requestSpans, spans, points } = await rig(t)
  const response = await app.inject({ method: 'POST', url: '/ticks', payload: { count: 2 } })
  const parent = requestSpans[0]!
  const [stream, ...others] = named(spans(), 'stream TicksCommand')
  t.equal(others.length, 0, 'one stream span')
  t.equal(stream!.kind, SpanKind.SERVER)
  t.equal(parentOf(stream!), parent.spanContext().spanId, 'a child of the request\'s span')
  t.equal(stream!.spanContext().traceId, parent.spanContext().traceId)
  const streamId = (JSON.parse(response.body.split('\n')[1]!.slice(6)) as { streamId: string }).streamId
  t.same(stream!.attributes, {
    'cqrs_stream.stream.id': streamId,
    'cqrs_stream.resumable': false,
    'http.route': '/ticks',
    'cqrs_stream.command': 'TicksCommand',
    'cqrs_stream.outcome': 'complete',
    'cqrs_stream.frames': 4,
    'cqrs_stream.items': 2,
    'cqrs_stream.bytes': Buffer.byteLength(response.body),
    'cqrs_stream.reconnects': 0,
  })
  t.equal(stream!.status.code, SpanStatusCode.UNSET)
  const calls = named(spans(), 'event Ticked TickedHandler')
  t.equal(calls.length, 2)
  t.ok(calls.every((span) => parentOf(span) === stream!.spanContext().spanId && span.kind === SpanKind.INTERNAL), 'event handler spans under the stream\'s')
  const publishes = named(spans(), 'publish ticks.announced')
  t.equal(publishes.length, 2)
  t.match(publishes[0]!.attributes, {
    'messaging.operation.name': 'publish', 'messaging.operation.type': 'send', 'messaging.destination.name': 'ticks.announced', 'messaging.message.id': String,
  })
  t.ok(publishes.every((span) => span.kind === SpanKind.PRODUCER && parentOf(span) === stream!.spanContext().spanId))

  t.same((await points(metricNames.openStreams)).map((p) => p.value), [0], 'open streams: back to 0')
  const durations = await points(metricNames.streamDuration)
  t.match(durations.map((p) => [p.attributes, (p.value as Histogram).count]), [[{ 'http.route': '/ticks', 'cqrs_stream.outcome': 'complete' }, 1]])
  t.same((await points(metricNames.frames)).map((p) => p.value), [4])
  t.same((await points(metricNames.bytes)).map((p) => p.value), [Buffer.byteLength(response.body)])
  t.same((await points(metricNames.eventHandlerDuration)).map((p) => [p.attributes, (p.value as Histogram).count]), [[{ 'cqrs_stream.event': 'Ticked', 'cqrs_stream.handler': 'TickedHandler' }, 2]])
  t.same((await points(metricNames.publishDuration)).map((p) => [p.attributes, (p.value as Histogram).count]), [[{ 'messaging.operation.name': 'publish', 'messaging.destination.name': 'ticks.announced' }, 2]])
})

t.test('a failing handler: the stream span ends with outcome error, status ERROR and the exception', async (t) => {
  const { app, spans, points } = await rig(t)
  await app.inject({ method: 'POST', url: '/ticks', payload: { count: 3, failAt: 2 } })
  const [stream] = named(spans(), 'stream TicksCommand')
  t.match(stream!.attributes, { 'cqrs_stream.outcome': 'error', 'cqrs_stream.items': 1, 'cqrs_stream.frames': 3 })
  t.equal(stream!.status.code, SpanStatusCode.ERROR)
  t.equal(stream!.status.message, 'tick 2 failed')
  t.match(stream!.events, [{ name: 'exception', attributes: { 'exception.message': 'tick 2 failed' } }])
  t.match((await points(metricNames.streamDuration)).map((p) => p.attributes), [{ 'cqrs_stream.outcome': 'error' }])
})

t.test('a failing event handler (isolated): its span has status ERROR and the exception; the stream completes', async (t) => {
  const { app, spans, points } = await rig(t)
  await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1, failEvent: 'error' } })
  const [call] = named(spans(), 'event Ticked TickedHandler')
  t.equal(call!.status.code, SpanStatusCode.ERROR)
  t.match(call!.events, [{ name: 'exception', attributes: { 'exception.message': 'could not record tick 1' } }])
  t.match(named(spans(), 'stream TicksCommand')[0]!.attributes, { 'cqrs_stream.outcome': 'complete' })
  t.match((await points(metricNames.eventHandlerDuration)).map((p) => p.attributes), [{ 'error.type': 'Error' }])
})

t.test('a client that leaves: outcome disconnect; a resumable stream\'s reconnect: span events and the reconnects count', async (t) => {
  const { port, app, spans, points } = await rig(t)
  const leaving = await openSse(port, '/ticks', { method: 'POST', body: JSON.stringify({ count: 1000, waitMs: 20 }) })
  await leaving.until(() => leaving.parser.frames.length >= 2, 'a tick')
  leaving.destroy()
  await eventually(() => named(spans(), 'stream TicksCommand').length === 1, 'the span to end')
  t.match(named(spans(), 'stream TicksCommand')[0]!.attributes, { 'cqrs_stream.outcome': 'disconnect' })

  const first = await openSse(port, '/resumable', { method: 'POST', body: JSON.stringify({ count: 6, waitMs: 20 }) })
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length >= 2, 'a tick')
  first.destroy()
  await eventually(() => app.streamStats().openStreams === 1, 'still running')
  const again = await openSse(port, '/resumable', { method: 'POST', body: JSON.stringify({ count: 6 }), headers: { 'last-event-id': `${streamId}:1` } })
  await again.ended
  t.equal(again.status, 200)
  await eventually(() => named(spans(), 'stream TicksCommand').length === 2, 'the resumed stream\'s span to end')
  const resumed = named(spans(), 'stream TicksCommand')[1]!
  t.match(resumed.attributes, { 'cqrs_stream.outcome': 'complete', 'cqrs_stream.reconnects': 1, 'cqrs_stream.resumable': true, 'http.route': '/resumable' })
  t.same(resumed.events.map((event) => event.name), ['disconnect', 'reconnect'])
  // Bytes are what was written to its clients: the replay on the reconnect counts, and the first client may not have read all it was sent.
  const received = Buffer.byteLength(first.body()) + Buffer.byteLength(await again.ended)
  t.ok((resumed.attributes['cqrs_stream.bytes'] as number) >= received, `${String(resumed.attributes['cqrs_stream.bytes'])} bytes written, ${received} received`)
  t.match((await points(metricNames.reconnects)).map((p) => [p.attributes, p.value]), [[{ 'http.route': '/resumable', 'cqrs_stream.reconnect.kind': 'reconnect' }, 1]])
})

t.test('uninstrument(): later streams make no spans', async (t) => {
  const exporter = new InMemorySpanExporter()
  const otel = instrument({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }) })
  otel.uninstrument()
  otel.uninstrument()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, { requests: (map) => map.bind(TicksCommand, TicksHandler) })
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand })
  await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 } })
  t.same(exporter.getFinishedSpans(), [])
})

t.test('error types, a failing broker, a stream without a route or command, a mediator stream without HTTP', async (t) => {
  const { app, spans, points } = await rig(t)
  await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1, failEvent: 'coded' } })
  await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1, failEvent: 'string' } })
  t.same((await points(metricNames.eventHandlerDuration)).map((p) => p.attributes['error.type']).sort(), ['TEST_ERR_TICK', 'error'], 'error.type: the code, else "error" for a non-Error')
  const stringFailure = named(spans(), 'event Ticked TickedHandler').find((span) => span.status.message === 'not an Error')
  t.equal(stringFailure?.status.code, SpanStatusCode.ERROR, 'a thrown string is recorded too')

  // A plain reply.eventStream(), and one in the not-found handler (no route url).
  await app.inject({ url: '/plain' })
  t.match(named(spans(), 'stream /plain')[0]?.attributes, { 'http.route': '/plain', 'cqrs_stream.outcome': 'complete' })
  t.notOk('cqrs_stream.command' in named(spans(), 'stream /plain')[0]!.attributes, 'no command')
  await app.inject({ url: '/nowhere' })
  const unrouted = named(spans(), 'stream eventStream')[0]!
  t.notOk('http.route' in unrouted.attributes, 'no route')
  t.ok((await points(metricNames.streamDuration)).some((p) => !('http.route' in p.attributes)), 'its metrics have no route')

  // A mediator stream consumed in-process: its event handler spans have no stream span above them.
  const drained: unknown[] = []
  for await (const item of app.mediator.stream(new TicksCommand({ count: 1, failAt: 0, failEvent: '', waitMs: 0 }))) drained.push(item)
  const orphan = named(spans(), 'event Ticked TickedHandler').at(-1)!
  t.equal(orphan.parentSpanContext, undefined, 'a root span: nothing was active')
})

t.test('a failing broker: the publish span has status ERROR, the publish metric an error.type', async (t) => {
  const exporter = new InMemorySpanExporter()
  const reader = new TestReader()
  const otel = instrument({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }), meterProvider: new MeterProvider({ readers: [reader] }) })
  t.teardown(() => { otel.uninstrument() })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, {
    requests: (map) => map.bind(TicksCommand, TicksHandler),
    messageBroker: { async send () { throw new Error('the broker is down') } },
  })
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand })
  await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 } })
  const [publish] = named(exporter.getFinishedSpans(), 'publish ticks.announced')
  t.equal(publish!.status.code, SpanStatusCode.ERROR)
  t.equal(publish!.status.message, 'the broker is down')
  const { resourceMetrics } = await reader.collect()
  const point = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((metric) => metric.descriptor.name === metricNames.publishDuration)!.dataPoints[0]!
  t.equal(point.attributes['error.type'], 'Error')
})

t.test('instrumented while a stream and an event handler run: they are not followed, and counts do not go negative', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, {
    requests: (map) => map.bind(TicksCommand, TicksHandler),
    events: (map) => map.bind(Ticked, TickedHandler),
    // Waits with the event handler: its send is in progress too.
    messageBroker: { async send () { await steering.gate } },
  })
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand })
  let release!: () => void
  steering.gate = new Promise((resolve) => { release = resolve })
  t.teardown(() => { steering.gate = undefined })
  const seen: string[] = []
  const watch = (message: unknown): void => { seen.push((message as { handlerName: string }).handlerName) }
  const ignore = (): void => {}
  // Someone listened when the run, the call and the send began (so they publish their ends), but not instrument().
  diagnosticsChannel.subscribe(channelNames.eventHandlerStart, watch)
  diagnosticsChannel.subscribe(channelNames.runStart, ignore)
  diagnosticsChannel.subscribe(channelNames.publishStart, ignore)
  const running = app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 } })
  await eventually(() => seen.length === 1, 'the event handler to start')
  diagnosticsChannel.unsubscribe(channelNames.eventHandlerStart, watch)
  diagnosticsChannel.unsubscribe(channelNames.runStart, ignore)
  diagnosticsChannel.unsubscribe(channelNames.publishStart, ignore)
  const exporter = new InMemorySpanExporter()
  const reader = new TestReader()
  const otel = instrument({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }), meterProvider: new MeterProvider({ readers: [reader] }) })
  t.teardown(() => { otel.uninstrument() })
  release()
  await running
  t.same(exporter.getFinishedSpans().map((span) => span.name), [], 'no span: each began before instrument()')
  const { resourceMetrics } = await reader.collect()
  const names = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).filter((metric) => metric.dataPoints.length > 0).map((metric) => metric.descriptor.name)
  t.same(names, [], 'no metric: the open-streams count did not go below 0')
})

t.test('only run:end listened to: a resumable stream whose client does not come back ends with window-expired', async (t) => {
  const ends: Array<{ outcome: string, reconnects: number }> = []
  const onEnd = (message: unknown): void => { ends.push(message as { outcome: string, reconnects: number }) }
  diagnosticsChannel.subscribe(channelNames.runEnd, onEnd)
  t.teardown(() => { diagnosticsChannel.unsubscribe(channelNames.runEnd, onEnd) })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, { requests: (map) => map.bind(TicksCommand, TicksHandler) })
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, resume: { windowMs: 100 } })
  const port = await listen(app)
  const client = await openSse(port, '/ticks', { method: 'POST', body: JSON.stringify({ count: 1000, waitMs: 10 }) })
  await client.until(() => client.parser.frames.length >= 2, 'a tick')
  client.destroy()
  await eventually(() => ends.length === 1, 'the run to end')
  t.match(ends, [{ outcome: 'window-expired', reconnects: 0 }])

  // Only run:start listened to: nothing is published at the end.
  diagnosticsChannel.unsubscribe(channelNames.runEnd, onEnd)
  const starts: unknown[] = []
  const onStart = (message: unknown): void => { starts.push(message) }
  diagnosticsChannel.subscribe(channelNames.runStart, onStart)
  t.teardown(() => { diagnosticsChannel.unsubscribe(channelNames.runStart, onStart) })
  const short = await openSse(port, '/ticks', { method: 'POST', body: JSON.stringify({ count: 1 }) })
  await short.ended
  t.equal(starts.length, 1)
  t.equal(ends.length, 1, 'no end seen')
})

t.test('instrument() without providers uses the global ones', async (t) => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  trace.setGlobalTracerProvider(provider)
  t.teardown(() => { trace.disable() })
  const otel = instrument()
  t.teardown(() => { otel.uninstrument() })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, { requests: (map) => map.bind(TicksCommand, TicksHandler) })
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand })
  await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 } })
  t.same(exporter.getFinishedSpans().map((span) => span.name).sort(), ['publish ticks.announced', 'stream TicksCommand'])
})

t.test('reply.eventStream() of a mediator stream is named by its command; a cancel and a shutdown are outcomes of their own', async (t) => {
  const { port, app, spans } = await rig(t)
  await app.inject({ url: '/mediated' })
  t.match(named(spans(), 'stream TicksCommand')[0]?.attributes, { 'http.route': '/mediated', 'cqrs_stream.command': 'TicksCommand' })

  const cancelled = await openSse(port, '/resumable', { method: 'POST', body: JSON.stringify({ count: 1000, waitMs: 10 }) })
  const streamId = await startStreamId(cancelled)
  const deleted = await app.inject({ method: 'DELETE', url: `/resumable/${streamId}` })
  t.equal(deleted.statusCode, 204)
  await cancelled.ended
  await eventually(() => named(spans(), 'stream TicksCommand').length === 2, 'the cancelled span')
  t.match(named(spans(), 'stream TicksCommand')[1]!.attributes, { 'cqrs_stream.outcome': 'cancel' })

  const running = await openSse(port, '/ticks', { method: 'POST', body: JSON.stringify({ count: 1000, waitMs: 10 }) })
  await startStreamId(running)
  await app.close()
  await running.ended
  t.match(named(spans(), 'stream TicksCommand')[2]!.attributes, { 'cqrs_stream.outcome': 'shutdown' })
})

/**
 * A stream on instance A whose client leaves after one tick and reconnects
 * to B, which follows it through Redis to its end.
 */
async function followedOnB (t: Test, propagator?: W3CTraceContextPropagator) {
  const exporter = new InMemorySpanExporter()
  const otel = instrument({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }), ...(propagator === undefined ? {} : { propagator }) })
  t.teardown(() => { otel.uninstrument() })
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix })
  const b = await redisInstance(t, { keyPrefix: prefix })
  a.pacer.hold()
  a.pacer.release(1)
  const first = await openSse(a.port, '/ticks?count=3')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 2, 'a tick')
  first.destroy()
  await first.ended.catch(() => {})
  const follower = await openSse(b.port, '/ticks?count=3', { headers: { 'last-event-id': `${streamId}:1` } })
  await eventually(() => b.app.streamStats().followers === 1, 'B to follow')
  a.pacer.release()
  await follower.ended
  return { exporter, otel, a, b, streamId, follower }
}

t.test('a client that follows the stream from another instance (Redis): a follow event on the owner\'s span', async (t) => {
  const { exporter } = await followedOnB(t)
  await eventually(() => named(exporter.getFinishedSpans(), 'stream TicksCommand').length === 1, 'the owner\'s span to end')
  const owner = named(exporter.getFinishedSpans(), 'stream TicksCommand')[0]!
  t.same(owner.events.map((event) => event.name), ['disconnect', 'follow'])
  t.match(owner.attributes, { 'cqrs_stream.outcome': 'complete', 'cqrs_stream.reconnects': 1 })
})

t.test('a stream followed on another instance (Redis): a follow span there, linked to the owner\'s stream span; its outcome and frames', async (t) => {
  const { exporter, otel, a, b, streamId, follower } = await followedOnB(t, new W3CTraceContextPropagator())
  await eventually(() => named(exporter.getFinishedSpans(), 'follow /ticks').length === 1, 'the follow span to end')
  const owner = named(exporter.getFinishedSpans(), 'stream TicksCommand')[0]!
  const follow = named(exporter.getFinishedSpans(), 'follow /ticks')[0]!
  t.equal(follow.kind, SpanKind.SERVER)
  t.same(follow.links.map((link) => link.context.spanId), [owner.spanContext().spanId], 'linked to the owner\'s span')
  t.same(follow.attributes, { 'cqrs_stream.stream.id': streamId, 'http.route': '/ticks', 'cqrs_stream.outcome': 'complete', 'cqrs_stream.frames': follower.parser.frames.length })

  // A follower whose client leaves, and one cut by a shutdown of its instance.
  a.pacer.hold()
  const second = await openSse(a.port, '/ticks?count=3')
  const secondId = await startStreamId(second)
  second.destroy()
  await second.ended.catch(() => {})
  const leaving = await openSse(b.port, '/ticks?count=3', { headers: { 'last-event-id': `${secondId}:0` } })
  await eventually(() => b.app.streamStats().followers === 1, 'B to follow again')
  leaving.destroy()
  await eventually(() => named(exporter.getFinishedSpans(), 'follow /ticks').length === 2, 'the second follow span to end')
  t.match(named(exporter.getFinishedSpans(), 'follow /ticks')[1]!.attributes, { 'cqrs_stream.outcome': 'disconnect', 'cqrs_stream.frames': 0 })
  // A follow that began before this instrument() is not followed by it.
  const unseen = await openSse(b.port, '/ticks?count=3', { headers: { 'last-event-id': `${secondId}:0` } })
  await eventually(() => b.app.streamStats().followers === 1, 'B to follow')
  otel.uninstrument()
  const late = new InMemorySpanExporter()
  const lateOtel = instrument({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(late)] }) })
  t.teardown(() => { lateOtel.uninstrument() })
  unseen.destroy()
  await eventually(() => b.app.streamStats().followers === 0, 'that follower to stop')
  t.equal(late.getFinishedSpans().length, 0, 'no span for it')
  t.equal(named(exporter.getFinishedSpans(), 'follow /ticks').length, 2, 'nor from the first instrumentation')
  lateOtel.uninstrument()
  const again = instrument({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }), propagator: new W3CTraceContextPropagator() })
  t.teardown(() => { again.uninstrument() })
  const cut = await openSse(b.port, '/ticks?count=3', { headers: { 'last-event-id': `${secondId}:0` } })
  await eventually(() => b.app.streamStats().followers === 1, 'B to follow a third time')
  await b.app.close()
  await cut.ended.catch(() => {})
  await eventually(() => named(exporter.getFinishedSpans(), 'follow /ticks').length === 3, 'the third follow span to end')
  t.match(named(exporter.getFinishedSpans(), 'follow /ticks')[2]!.attributes, { 'cqrs_stream.outcome': 'shutdown' })
  a.pacer.release()
})

t.test('two-step pending: up when posted, down when taken or expired; a command posted before instrument() is not counted', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, { requests: (map) => map.bind(TicksCommand, TicksHandler), heartbeatMs: 0 })
  app.streamRoute({ method: 'POST', url: '/later', request: TicksCommand, twoStep: { claimTimeoutMs: 200 } })
  const before = await app.inject({ method: 'POST', url: '/later', payload: { count: 1 } })
  const reader = new TestReader()
  const otel = instrument({ meterProvider: new MeterProvider({ readers: [reader] }) })
  t.teardown(() => { otel.uninstrument() })
  const pending = async (): Promise<unknown[]> => {
    const { resourceMetrics } = await reader.collect()
    return resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).filter((metric) => metric.descriptor.name === metricNames.twoStepPending)
      .flatMap((metric) => metric.dataPoints.map((point) => [point.attributes, point.value]))
  }
  const taken = await app.inject({ method: 'POST', url: '/later', payload: { count: 1 } })
  await app.inject({ method: 'POST', url: '/later', payload: { count: 1 } })
  t.same(await pending(), [[{ 'http.route': '/later' }, 2]], 'two posted since instrument()')
  await app.inject({ url: taken.json<{ url: string }>().url })
  t.same(await pending(), [[{ 'http.route': '/later' }, 1]], 'one taken by its GET')
  await app.inject({ url: before.json<{ url: string }>().url })
  t.same(await pending(), [[{ 'http.route': '/later' }, 1]], 'the one posted before is not counted down')
  await eventually(() => app.streamStats().pendingStreams === 0, 'the last to expire')
  t.same(await pending(), [[{ 'http.route': '/later' }, 0]], 'the last expired')
})
