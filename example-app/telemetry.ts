import { context, SpanKind, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type SpanExporter, type SpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { instrument } from '../src/otel/index.js'

// `OTEL=1 npm start`: the demo's traces and metrics. Off by default, and
// then nothing of OpenTelemetry is set up: the package's diagnostics
// channels keep no subscriber.

/** What the environment asks for; see {@link telemetryConfig}. */
export interface TelemetryConfig {
  /** Where finished spans go: printed, sent over OTLP/HTTP, or dropped. */
  readonly traces: 'console' | 'otlp' | 'none'
  /** The port of the Prometheus endpoint, 0 for any free one. */
  readonly metricsPort: number
  readonly metricsHost: string
  /** `service.name`; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES still win. */
  readonly serviceName: string
  /** `service.instance.id` (the cluster demo's INSTANCE). */
  readonly instance?: string
}

const TRACE_EXPORTERS = ['console', 'otlp', 'none'] as const

/**
 * Reads `OTEL` (`1` or `true` turns it on; unset: undefined, no
 * OpenTelemetry), `OTEL_TRACES_EXPORTER` (`console`, the default here
 * since the demo has no collector; `otlp`, to OTEL_EXPORTER_OTLP_ENDPOINT;
 * `none`), `OTEL_EXPORTER_PROMETHEUS_PORT` (default 9464) and
 * `OTEL_EXPORTER_PROMETHEUS_HOST` (default `host`, the app's). Throws on
 * a value it does not know, as server.ts does for PORT.
 */
export function telemetryConfig (env: NodeJS.ProcessEnv, host: string): TelemetryConfig | undefined {
  if (env.OTEL === undefined || env.OTEL === '' || env.OTEL === '0') return undefined
  if (env.OTEL !== '1' && env.OTEL !== 'true') throw new Error(`OTEL must be 1 (or unset), got ${env.OTEL}`)
  const traces = env.OTEL_TRACES_EXPORTER ?? 'console'
  if (!(TRACE_EXPORTERS as readonly string[]).includes(traces)) {
    throw new Error(`OTEL_TRACES_EXPORTER must be one of ${TRACE_EXPORTERS.join(', ')}, got ${traces}`)
  }
  const metricsPort = Number(env.OTEL_EXPORTER_PROMETHEUS_PORT ?? 9464)
  if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) {
    throw new Error(`OTEL_EXPORTER_PROMETHEUS_PORT must be a port number, got ${env.OTEL_EXPORTER_PROMETHEUS_PORT}`)
  }
  return {
    traces: traces as TelemetryConfig['traces'],
    metricsPort,
    metricsHost: env.OTEL_EXPORTER_PROMETHEUS_HOST ?? host,
    serviceName: 'orders-demo',
    instance: env.INSTANCE,
  }
}

export interface TelemetryOptions {
  /** Where spans go instead of `config.traces`' exporter, e.g. an InMemorySpanExporter. */
  spanExporter?: SpanExporter
}

export interface Telemetry {
  /** The port Prometheus scrapes `/metrics` on (the one asked for, or the free one given for 0). */
  readonly metricsPort: number
  readonly tracerProvider: BasicTracerProvider
  readonly meterProvider: MeterProvider
  /**
   * For buildApp's `beforeRoutes`: a SERVER span per request, active while
   * its route handler runs, so a stream's span is its child. It ends with
   * the response, as the http instrumentation's does.
   */
  requestSpans (app: FastifyInstance): void
  /** Stops following streams, sends the spans still buffered, closes the metrics endpoint. */
  close (): Promise<void>
}

function spanProcessors (config: TelemetryConfig, options: TelemetryOptions): SpanProcessor[] {
  if (options.spanExporter !== undefined) return [new SimpleSpanProcessor(options.spanExporter)]
  if (config.traces === 'console') return [new SimpleSpanProcessor(new ConsoleSpanExporter())]
  // Batched: one POST per batch, not per span. The endpoint is the SDK's
  // own OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, default http://localhost:4318.
  if (config.traces === 'otlp') return [new BatchSpanProcessor(new OTLPTraceExporter())]
  return []
}

/**
 * Sets up the SDK for the demo: a MeterProvider read by a PrometheusExporter
 * served at `/metrics` on its own port, a tracer provider with the chosen
 * exporter, the AsyncLocalStorage context manager (without it the request's
 * span is not active in its route handler, and a stream's span has no
 * parent), and {@link instrument}. Nothing is
 * registered globally but the context manager.
 */
export async function startTelemetry (config: TelemetryConfig, options: TelemetryOptions = {}): Promise<Telemetry> {
  // The exporter's own server takes port 0 for "unset" (9464): served here
  // instead, so a test or the trace picture can ask for any free port.
  const prometheus = new PrometheusExporter({ preventServerStart: true })
  const server = createServer((request, response) => {
    if (request.method === 'GET' && new URL(String(request.url), 'http://metrics').pathname === '/metrics') {
      prometheus.getMetricsRequestHandler(request, response)
      return
    }
    response.statusCode = 404
    response.end()
  })
  // First, so that a port in use fails before anything is registered.
  server.listen(config.metricsPort, config.metricsHost)
  await once(server, 'listening')

  const resource = resourceFromAttributes({
    'service.name': config.serviceName,
    ...(config.instance === undefined ? {} : { 'service.instance.id': config.instance }),
  }).merge(detectResources({ detectors: [envDetector] }))
  const meterProvider = new MeterProvider({ resource, readers: [prometheus] })
  const tracerProvider = new BasicTracerProvider({ resource, spanProcessors: spanProcessors(config, options) })
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  // W3C trace context, as NodeSDK registers: the outbox rows and AMQP messages carry it.
  const otel = instrument({ tracerProvider, meterProvider, propagator: new W3CTraceContextPropagator() })

  const tracer = tracerProvider.getTracer('orders-demo')
  let closing: Promise<void> | undefined
  return {
    metricsPort: (server.address() as AddressInfo).port,
    tracerProvider,
    meterProvider,
    requestSpans (app) {
      app.addHook('onRoute', (route) => {
        const handler = route.handler as (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown
        route.handler = function (request, reply) {
          const span = tracer.startSpan(`${request.method} ${route.url}`, {
            kind: SpanKind.SERVER,
            attributes: { 'http.request.method': request.method, 'http.route': route.url },
          })
          reply.raw.once('close', () => {
            span.setAttribute('http.response.status_code', reply.raw.statusCode)
            span.end()
          })
          return context.with(trace.setSpan(context.active(), span), handler, this, request, reply) as ReturnType<typeof route.handler>
        }
      })
    },
    close () {
      // Once: server.ts's onClose and a test's teardown may both call it.
      closing ??= (async () => {
        otel.uninstrument()
        server.closeAllConnections()
        await new Promise((resolve) => server.close(resolve))
        await tracerProvider.shutdown()
        await meterProvider.shutdown()
        context.disable()
      })()
      return closing
    },
  }
}
