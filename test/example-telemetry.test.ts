// `OTEL=1 npm start`: the example app's telemetry (example-app/telemetry.ts).
// A real stream over a socket, then the Prometheus endpoint scraped over
// HTTP and the span tree from an in-memory exporter; the console and OTLP
// exporters; what the environment switches accept.
import { SpanKind } from '@opentelemetry/api'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import diagnosticsChannel from 'node:diagnostics_channel'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { buildApp } from '../example-app/app.js'
import { startTelemetry, telemetryConfig, type Telemetry, type TelemetryConfig, type TelemetryOptions } from '../example-app/telemetry.js'
import { channelNames, InMemoryMessageBroker } from '../src/index.js'
import { eventually, listen, openSse } from './fixtures/sse-client.js'

const config = (overrides: Partial<TelemetryConfig> = {}): TelemetryConfig =>
  ({ traces: 'none', metricsPort: 0, metricsHost: '127.0.0.1', serviceName: 'orders-demo', ...overrides })

/** Telemetry and the example app on it, both closed after the test (again, if the test did): the app first, so its last spans are exported. */
async function demo (t: Test, telemetryOptions: TelemetryOptions, overrides: Partial<TelemetryConfig> = {}): Promise<{ telemetry: Telemetry, app: Awaited<ReturnType<typeof buildApp>>, port: number }> {
  const telemetry = await startTelemetry(config(overrides), telemetryOptions)
  const app = await buildApp({ orderDelayMs: 1, broker: new InMemoryMessageBroker(), beforeRoutes: telemetry.requestSpans })
  t.teardown(async () => {
    await app.close()
    await telemetry.close()
  })
  return { telemetry, app, port: await listen(app) }
}

async function scrape (port: number, path = '/metrics'): Promise<{ status: number, text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: response.status, text: await response.text() }
}

interface Node { name: string, kind: SpanKind, children: Node[] }

/** The spans as a tree from their parent ids; siblings by name, as handlers and sends interleave. */
function tree (spans: ReadableSpan[], parent?: string): Node[] {
  return spans
    .filter((span) => span.parentSpanContext?.spanId === parent)
    .map((span) => ({ name: span.name, kind: span.kind, children: tree(spans, span.spanContext().spanId) }))
    .sort((a, b) => a.name.localeCompare(b.name))
}

t.test('OTEL=1: a stream\'s span tree under its request\'s span, and its metrics on the Prometheus endpoint', async (t) => {
  const exporter = new InMemorySpanExporter()
  const { telemetry, port } = await demo(t, { spanExporter: exporter }, { instance: 'instance-1' })
  const client = await openSse(port, '/orders/process', { method: 'POST', body: JSON.stringify({ orderIds: ['a', 'b'] }) })
  const body = await client.ended
  t.equal(client.parser.frames.length, 4, 'start, two orders, complete')
  // The request's span ends with the response, after the stream's.
  await eventually(() => exporter.getFinishedSpans().some((span) => span.name === 'POST /orders/process'), 'the request span')

  const spans = exporter.getFinishedSpans()
  const handlerSpans = (name: string): Node[] => [name, name].map((n) => ({ name: n, kind: SpanKind.INTERNAL, children: [] }))
  t.same(tree(spans), [{
    name: 'POST /orders/process',
    kind: SpanKind.SERVER,
    children: [{
      name: 'stream ProcessOrdersCommand',
      kind: SpanKind.SERVER,
      children: [
        ...handlerSpans('event OrderAnalyticsEvent OrderAnalyticsHandler'),
        ...handlerSpans('event OrderProcessedEvent OrderProcessedHandler'),
        { name: 'publish orders.shipped', kind: SpanKind.PRODUCER, children: [] },
        { name: 'publish orders.shipped', kind: SpanKind.PRODUCER, children: [] },
      ],
    }],
  }], 'request → stream → 4 event handler calls and 2 sends')
  t.equal(new Set(spans.map((span) => span.spanContext().traceId)).size, 1, 'one trace')
  const request = spans.find((span) => span.name === 'POST /orders/process')!
  t.same(request.attributes, { 'http.request.method': 'POST', 'http.route': '/orders/process', 'http.response.status_code': 200 })
  t.match(spans.find((span) => span.name === 'stream ProcessOrdersCommand')!.attributes, { 'cqrs_stream.outcome': 'complete', 'cqrs_stream.frames': 4 })
  t.match(request.resource.attributes, { 'service.name': 'orders-demo', 'service.instance.id': 'instance-1' })

  const { status, text } = await scrape(telemetry.metricsPort)
  t.equal(status, 200)
  const lines = text.split('\n')
  const scope = 'otel_scope_name="fastify-cqrs-stream"'
  const route = `http_route="/orders/process",${scope}`
  for (const line of [
    'target_info{service_name="orders-demo",service_instance_id="instance-1"} 1',
    `cqrs_stream_streams_open{${route}} 0`,
    `cqrs_stream_stream_duration_count{http_route="/orders/process",cqrs_stream_outcome="complete",${scope}} 1`,
    `cqrs_stream_stream_duration_bucket{http_route="/orders/process",cqrs_stream_outcome="complete",${scope},le="3600"} 1`,
    `cqrs_stream_stream_duration_bucket{http_route="/orders/process",cqrs_stream_outcome="complete",${scope},le="+Inf"} 1`,
    `cqrs_stream_frames_total{${route}} 4`,
    `cqrs_stream_bytes_total{${route}} ${Buffer.byteLength(body)}`,
    `cqrs_stream_event_handler_duration_count{cqrs_stream_event="OrderProcessedEvent",cqrs_stream_handler="OrderProcessedHandler",${scope}} 2`,
    `cqrs_stream_event_handler_duration_count{cqrs_stream_event="OrderAnalyticsEvent",cqrs_stream_handler="OrderAnalyticsHandler",${scope}} 2`,
    `messaging_client_operation_duration_count{messaging_operation_name="publish",messaging_destination_name="orders.shipped",${scope}} 2`,
    '# TYPE cqrs_stream_stream_duration histogram',
    '# UNIT cqrs_stream_stream_duration s',
    '# TYPE cqrs_stream_streams_open gauge',
    '# TYPE cqrs_stream_frames_total counter',
  ]) t.ok(lines.includes(line), line)
  t.match(text, /cqrs_stream_event_handler_duration_bucket\{[^}]*le="0\.0005"\}/, 'buckets for seconds, not the SDK\'s milliseconds')
  t.notOk(lines.some((line) => line.startsWith('cqrs_stream_reconnects')), 'a counter appears once it counts')
  t.equal((await scrape(telemetry.metricsPort, '/other')).status, 404, 'only /metrics')
  t.equal((await fetch(`http://127.0.0.1:${telemetry.metricsPort}/metrics`, { method: 'POST' })).status, 404, 'only GET')

  // close(): the package's channels lose their subscribers, the app goes on, the endpoint is gone.
  t.ok(diagnosticsChannel.hasSubscribers(channelNames.runStart))
  await telemetry.close()
  t.equal(telemetry.close(), telemetry.close(), 'once')
  t.notOk(diagnosticsChannel.hasSubscribers(channelNames.runStart), 'uninstrumented')
  const after = await openSse(port, '/orders/process', { method: 'POST', body: JSON.stringify({ orderIds: ['c'] }) })
  t.equal((await after.ended).split('\n\n').length - 1, 3, 'still streaming')
  await t.rejects(fetch(`http://127.0.0.1:${telemetry.metricsPort}/metrics`), 'the metrics port is closed')
})

t.test('OTEL_TRACES_EXPORTER=console prints each span', async (t) => {
  const printed = t.capture(console, 'dir')
  const { app } = await demo(t, {}, { traces: 'console' })
  await app.inject({ method: 'GET', url: '/health' })
  t.match(printed().map((call) => call.args[0]), [{ name: 'GET /health', kind: SpanKind.SERVER, attributes: { 'http.route': '/health' } }])
})

t.test('OTEL_TRACES_EXPORTER=otlp sends batches to OTEL_EXPORTER_OTLP_ENDPOINT', async (t) => {
  const received: Array<{ url?: string, headers: IncomingHttpHeaders, body: string }> = []
  const collector = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    request.on('end', () => {
      received.push({ url: request.url, headers: request.headers, body: Buffer.concat(chunks).toString() })
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  collector.listen(0, '127.0.0.1')
  await once(collector, 'listening')
  t.teardown(() => new Promise((resolve) => collector.close(resolve)))
  // Read by the SDK's exporter itself, when it is made.
  const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`
  t.teardown(() => {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved
  })
  const { telemetry, app } = await demo(t, {}, { traces: 'otlp' })
  await app.inject({ method: 'GET', url: '/health' })
  t.equal(received.length, 0, 'batched, not sent per span')
  await app.close()
  await telemetry.close()
  t.equal(received.length, 1, 'the batch, sent by close()')
  t.equal(received[0]!.url, '/v1/traces')
  t.equal(received[0]!.headers['content-type'], 'application/json')
  t.match(received[0]!.body, /"name":"GET \/health"/)
  t.match(received[0]!.body, /"key":"service\.name","value":\{"stringValue":"orders-demo"\}/)
})

t.test('OTEL_TRACES_EXPORTER=none: metrics only; a metrics port in use fails startTelemetry', async (t) => {
  const { telemetry, app } = await demo(t, {})
  await app.inject({ method: 'GET', url: '/health' })
  t.match((await scrape(telemetry.metricsPort)).text, /^target_info\{service_name="orders-demo"\} 1$/m, 'no service.instance.id without INSTANCE')
  await t.rejects(startTelemetry(config({ metricsPort: telemetry.metricsPort })), { code: 'EADDRINUSE' })
})

t.test('telemetryConfig: OTEL=1 turns it on; the exporters, the metrics port and host from the environment', async (t) => {
  for (const off of [{}, { OTEL: '' }, { OTEL: '0' }, { OTEL_TRACES_EXPORTER: 'otlp' }]) {
    t.equal(telemetryConfig(off, '127.0.0.1'), undefined, `off: ${JSON.stringify(off)}`)
  }
  t.same(telemetryConfig({ OTEL: '1' }, '0.0.0.0'), { traces: 'console', metricsPort: 9464, metricsHost: '0.0.0.0', serviceName: 'orders-demo', instance: undefined }, 'the defaults')
  t.same(telemetryConfig({
    OTEL: 'true', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_PROMETHEUS_PORT: '9465', OTEL_EXPORTER_PROMETHEUS_HOST: '::1', INSTANCE: 'instance-2',
  }, '127.0.0.1'), { traces: 'otlp', metricsPort: 9465, metricsHost: '::1', serviceName: 'orders-demo', instance: 'instance-2' })
  t.equal(telemetryConfig({ OTEL: '1', OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_PROMETHEUS_PORT: '0' }, 'h')?.metricsPort, 0, 'any free port')
  t.throws(() => telemetryConfig({ OTEL: 'yes' }, 'h'), { message: 'OTEL must be 1 (or unset), got yes' })
  t.throws(() => telemetryConfig({ OTEL: '1', OTEL_TRACES_EXPORTER: 'jaeger' }, 'h'), { message: 'OTEL_TRACES_EXPORTER must be one of console, otlp, none, got jaeger' })
  for (const port of ['x', '-1', '65536', '1.5']) {
    t.throws(() => telemetryConfig({ OTEL: '1', OTEL_EXPORTER_PROMETHEUS_PORT: port }, 'h'), { message: `OTEL_EXPORTER_PROMETHEUS_PORT must be a port number, got ${port}` })
  }
})
