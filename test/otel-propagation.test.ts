// The W3C trace context across the wire: a publish span's `traceparent` in
// the AMQP headers a consumer of a real RabbitMQ queue sees, kept in an
// outbox row so that the relay's publish continues the stream's trace.
import { SpanKind } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import fastifyCqrsStream, { NotificationEvent, Request, StreamingRequestHandler, type MessageBroker } from '../src/index.js'
import { AmqpMessageBroker } from '../src/amqp/index.js'
import { instrument } from '../src/otel/index.js'
import { OutboxRelay } from '../src/postgres/index.js'
import { observer, RABBIT_URL, takeAll, uniqueName } from './fixtures/amqp-rabbit.js'
import { testOutbox, testPool } from './fixtures/postgres.js'
import { eventually } from './fixtures/sse-client.js'

class ShipCommand extends Request(Type.Object({ count: Type.Integer() })) {}
class Shipped extends NotificationEvent('orders.shipped', Type.Object({ n: Type.Integer() })) {}

class ShipHandler extends StreamingRequestHandler<ShipCommand, { n: number }> {
  async * handle (command: ShipCommand): AsyncGenerator<{ n: number }> {
    for (let n = 1; n <= command.count; n++) {
      this.emit(new Shipped({ n }))
      yield { n }
    }
  }
}

function tracing (t: Test): InMemorySpanExporter {
  const exporter = new InMemorySpanExporter()
  const otel = instrument({
    tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
    propagator: new W3CTraceContextPropagator(),
  })
  t.teardown(() => { otel.uninstrument() })
  return exporter
}

async function shipping (t: Test, messageBroker: MessageBroker): Promise<ReturnType<typeof Fastify>> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, { requests: (map) => map.bind(ShipCommand, ShipHandler), messageBroker, heartbeatMs: 0 })
  app.streamRoute({ method: 'POST', url: '/ship', request: ShipCommand })
  return app
}

/** A broker on an exchange of its own, and a queue bound to it that the test reads. */
async function rabbit (t: Test): Promise<{ watch: Awaited<ReturnType<typeof observer>>, queue: string, broker: AmqpMessageBroker }> {
  const exchange = uniqueName('exchange')
  const watch = await observer(t)
  const queue = await watch.boundQueue(exchange)
  const broker = await AmqpMessageBroker.connect({ url: RABBIT_URL, exchange })
  t.teardown(() => broker.close())
  return { watch, queue, broker }
}

const traceparentOf = (span: ReadableSpan): string => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`
const named = (spans: ReadableSpan[], name: string): ReadableSpan[] => spans.filter((span) => span.name === name)

t.test('AmqpMessageBroker: the consumer of a real RabbitMQ queue sees the publish span\'s traceparent', async (t) => {
  const exporter = tracing(t)
  const { watch, queue, broker } = await rabbit(t)
  const app = await shipping(t, broker)
  const response = await app.inject({ method: 'POST', url: '/ship', payload: { count: 2 } })
  t.match(response.body, /"type":"complete"/)

  const [stream] = named(exporter.getFinishedSpans(), 'stream ShipCommand')
  const publishes = named(exporter.getFinishedSpans(), 'publish orders.shipped')
  t.equal(publishes.length, 2)
  for (const span of publishes) {
    t.equal(span.kind, SpanKind.PRODUCER)
    t.equal(span.parentSpanContext?.spanId, stream!.spanContext().spanId)
    t.match(span.attributes, { 'messaging.system': 'rabbitmq', 'messaging.rabbitmq.destination.routing_key': 'orders.shipped', 'messaging.destination.name': 'orders.shipped' })
  }
  const messages = await takeAll(watch.channel, queue)
  t.same(messages.map((m) => [m.properties.messageId, m.properties.headers]),
    publishes.map((span) => [span.attributes['messaging.message.id'], { traceparent: traceparentOf(span) }]),
    'each message carries its own publish span as traceparent')
})

t.test('the PostgreSQL outbox keeps the traceparent in its row; the relay\'s publish continues the stream\'s trace, and the consumer sees the relay\'s', async (t) => {
  const exporter = tracing(t)
  const pool = testPool(t)
  const outbox = await testOutbox(t, pool)
  const { watch, queue, broker } = await rabbit(t)
  const app = await shipping(t, outbox)
  await app.inject({ method: 'POST', url: '/ship', payload: { count: 1 } })
  const [written] = named(exporter.getFinishedSpans(), 'publish orders.shipped')
  t.notOk(written!.attributes['messaging.system'], 'the outbox is not a messaging system')
  const { rows } = await pool.query<{ headers: unknown }>(`SELECT headers FROM ${outbox.sql.table}`)
  t.same(rows, [{ headers: { traceparent: traceparentOf(written!) } }], 'kept with the row')

  const relay = new OutboxRelay({ outbox, broker, pollMs: 50 })
  await relay.start()
  t.teardown(() => relay.stop())
  await eventually(() => relay.stats.sent === 1, 'the relay to send the row')
  const relayed = named(exporter.getFinishedSpans(), 'publish orders.shipped').find((span) => span !== written)!
  t.equal(relayed.kind, SpanKind.PRODUCER)
  t.equal(relayed.spanContext().traceId, written!.spanContext().traceId, 'the same trace')
  t.equal(relayed.parentSpanContext?.spanId, written!.spanContext().spanId, 'a child of the stream\'s publish span')
  t.notOk('cqrs_stream.stream.id' in relayed.attributes, 'no stream of its own')
  t.match(relayed.attributes, { 'messaging.system': 'rabbitmq', 'messaging.message.id': written!.attributes['messaging.message.id'] })
  const messages = await takeAll(watch.channel, queue)
  t.same(messages.map((m) => m.properties.headers), [{ traceparent: traceparentOf(relayed) }])
})

t.test('without a propagator no headers are written: the outbox row keeps none and the relay sends none', async (t) => {
  const exporter = new InMemorySpanExporter()
  // The global propagator is the API's no-op one until an SDK registers one.
  const otel = instrument({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }) })
  t.teardown(() => { otel.uninstrument() })
  const pool = testPool(t)
  const outbox = await testOutbox(t, pool)
  const { watch, queue, broker } = await rabbit(t)
  const app = await shipping(t, outbox)
  await app.inject({ method: 'POST', url: '/ship', payload: { count: 1 } })
  const { rows } = await pool.query<{ headers: unknown }>(`SELECT headers FROM ${outbox.sql.table}`)
  t.same(rows, [{ headers: null }])
  otel.uninstrument()
  const relay = new OutboxRelay({ outbox, broker, pollMs: 50 })
  await relay.start()
  t.teardown(() => relay.stop())
  await eventually(() => relay.stats.sent === 1, 'the relay to send the row')
  const messages = await takeAll(watch.channel, queue)
  t.same(messages.map((m) => m.properties.headers), [{}], 'no AMQP headers')
  t.equal(named(exporter.getFinishedSpans(), 'publish orders.shipped').length, 1, 'the relay made no span once uninstrumented')
})
