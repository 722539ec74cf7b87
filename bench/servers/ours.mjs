// Our variant: a Fastify app with fastify-cqrs-stream streaming the bench
// workload through app.streamRoute. Event handlers are not bound (events off);
// heartbeats keep the plugin default (on).
// The plugin is loaded from dist/ (what npm ships; `npm run bench` builds it
// first), or from src/ when BENCH_LIB=src (then run under `node --import tsx`,
// whose transform makes src/ a little slower and larger than the build).
// usage: node --expose-gc bench/servers/ours.mjs [otel|otel-floor]   (prints `ready <port>`)
import { setTimeout as delay } from 'node:timers/promises'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import { cpuProbe, memProbe } from '../lib/probes.mjs'
import { resultOf, resultSchema, stampedResult } from '../lib/workload.mjs'

const lib = await import(process.env.BENCH_LIB === 'src' ? '../../src/index.ts' : '../../dist/index.js')

// `ours.mjs otel`: instrumented by fastify-cqrs-stream/otel, every span
// sampled and exported to nowhere through a BatchSpanProcessor (what a
// production SDK setup uses), metrics aggregated, W3C propagation
// (issue #14's cost).
// `ours.mjs otel-floor`: the same SDK setup, and instead of
// fastify-cqrs-stream/otel the least any instrumentation giving the same
// telemetry must do per stream: a span with its attributes and one
// duration record, straight from the run:start and run:end channels. What
// the SDK costs, whoever calls it.
if (process.argv[2] === 'otel' || process.argv[2] === 'otel-floor') {
  const { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base')
  const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics')
  const { W3CTraceContextPropagator } = await import('@opentelemetry/core')
  const noopExporter = { export (_spans, done) { done({ code: 0 }) }, async shutdown () {} }
  class IdleReader extends MetricReader {
    async onForceFlush () {}
    async onShutdown () {}
  }
  const tracerProvider = new BasicTracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [new BatchSpanProcessor(noopExporter)] })
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] })
  if (process.argv[2] === 'otel') {
    const { instrument } = await import(process.env.BENCH_LIB === 'src' ? '../../src/otel/index.ts' : '../../dist/otel/index.js')
    // What NodeSDK registers as the propagator.
    instrument({ tracerProvider, meterProvider, propagator: new W3CTraceContextPropagator() })
  } else {
    const { subscribe } = await import('node:diagnostics_channel')
    const tracer = tracerProvider.getTracer('floor')
    const duration = meterProvider.getMeter('floor').createHistogram('duration', { unit: 's', advice: { explicitBucketBoundaries: [0.1, 1, 10, 100] } })
    const open = new Map()
    subscribe('fastify-cqrs-stream:run:start', (run) => {
      const span = tracer.startSpan(`stream ${run.command}`, { kind: 1, attributes: { 'cqrs_stream.stream.id': run.streamId, 'cqrs_stream.resumable': run.resumable, 'http.route': run.route, 'cqrs_stream.command': run.command } })
      open.set(run.streamId, { span, started: performance.now() })
    })
    subscribe('fastify-cqrs-stream:run:end', ({ run, outcome, frames, items, bytes, reconnects }) => {
      const { span, started } = open.get(run.streamId)
      open.delete(run.streamId)
      span.setAttributes({ 'cqrs_stream.outcome': outcome, 'cqrs_stream.frames': frames, 'cqrs_stream.items': items, 'cqrs_stream.bytes': bytes, 'cqrs_stream.reconnects': reconnects })
      span.end()
      duration.record((performance.now() - started) / 1000, { 'http.route': run.route, 'cqrs_stream.outcome': outcome })
    })
  }
}
const { default: fastifyCqrsStream, Request, Response, StreamingRequestHandler } = lib

class StreamCommand extends Request(Type.Object({ n: Type.Integer({ minimum: 0 }) })) {}
class LiveCommand extends Request(Type.Object({ n: Type.Integer({ minimum: 0 }), ms: Type.Integer({ minimum: 0 }) })) {}
class IdleCommand extends Request(Type.Object({})) {}
class OrderResult extends Response(resultSchema) {}

/** Yields `n` results as fast as the client takes them. */
class StreamHandler extends StreamingRequestHandler {
  async * handle (command) {
    for (let i = 0; i < command.n; i++) yield new OrderResult(resultOf(i))
  }
}

/** Yields one time-stamped result every `ms`, `n` times. */
class LiveHandler extends StreamingRequestHandler {
  async * handle (command, { signal }) {
    for (let i = 0; i < command.n; i++) {
      await delay(command.ms, undefined, { signal })
      yield new OrderResult(stampedResult())
    }
  }
}

/** Sends nothing after the start frame: waits until the client leaves. */
class IdleHandler extends StreamingRequestHandler {
  async * handle (_command, { signal }) {
    await new Promise((resolve) => { signal.addEventListener('abort', resolve, { once: true }) })
    yield * []
  }
}

const app = Fastify({ logger: false })
await app.register(fastifyCqrsStream, {
  // The 10,000-stream case measures what one instance holds, not admission (the default cap is 10,000).
  limits: { maxOpenStreams: 20_000 },
  requests: (map) => map
    .bind(StreamCommand, StreamHandler)
    .bind(LiveCommand, LiveHandler)
    .bind(IdleCommand, IdleHandler),
})
app.streamRoute({ method: 'GET', url: '/stream', request: StreamCommand, response: OrderResult })
app.streamRoute({ method: 'GET', url: '/live', request: LiveCommand, response: OrderResult })
// The setup case's owned variant: a stream owner read from a header, as a session would be (issue #12).
app.streamRoute({ method: 'GET', url: '/owned', request: StreamCommand, response: OrderResult, streamOwner: (request) => request.headers['x-user'] ?? 'anonymous' })
app.streamRoute({ method: 'GET', url: '/idle', request: IdleCommand, response: OrderResult, eventStream: { heartbeatMs: 15_000 } })
app.get('/cpu', async () => cpuProbe())
app.get('/mem', async (request) => memProbe(request.query.gc === '1'))

// A normal exit, so `node --cpu-prof` writes its profile when the harness stops us.
process.on('SIGTERM', () => { process.exit(0) })

await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
console.log(`ready ${app.server.address().port}`)
