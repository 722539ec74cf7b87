import { buildApp } from './app.js'
import { sharedServices } from './shared-services.js'
import type { TelemetryConfig } from './telemetry.js'
import { tlsFromEnv } from './tls.js'

// `npm start`: the orders demo on http://localhost:3000 (PORT, HOST and
// ORDER_DELAY_MS change the defaults). Everything in memory, unless
// REDIS_URL (resumable streams shared between instances), AMQP_URL
// (notifications to RabbitMQ) or DATABASE_URL (orders in PostgreSQL, their
// notifications through the outbox) are set, as `npm run start:cluster` does.
// HTTPS=1 serves it over HTTPS and HTTP/2, with TLS_KEY and TLS_CERT (PEM
// files) or a self-signed certificate made at startup. OTEL=1 exports traces
// (OTEL_TRACES_EXPORTER: console, the default, otlp or none) and serves
// metrics for Prometheus at :9464/metrics (OTEL_EXPORTER_PROMETHEUS_PORT);
// see docs/observability.md.
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const orderDelayMs = Number(process.env.ORDER_DELAY_MS ?? 300)

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, got ${process.env.PORT}`)
  process.exit(1)
}
if (!Number.isInteger(orderDelayMs) || orderDelayMs < 0) {
  console.error(`ORDER_DELAY_MS must be a non-negative integer, got ${process.env.ORDER_DELAY_MS}`)
  process.exit(1)
}

// Loaded only when asked for: a plain `npm start` loads no OpenTelemetry module.
const otel = process.env.OTEL === undefined ? undefined : await import('./telemetry.js')
let otelConfig: TelemetryConfig | undefined
try {
  otelConfig = otel?.telemetryConfig(process.env, host)
} catch (error) {
  console.error((error as Error).message)
  process.exit(1)
}
// Before the app, so that its first stream is followed.
const telemetry = otelConfig === undefined ? undefined : await otel!.startTelemetry(otelConfig)
const shared = await sharedServices(process.env)
const tls = await tlsFromEnv(process.env)
const app = await buildApp({
  orderDelayMs, logger: true, instance: process.env.INSTANCE, tls, ...shared.options, beforeRoutes: telemetry?.requestSpans,
})
// After the plugin's own close: streams have ended, and their events were sent.
app.addHook('onClose', shared.close)
// Last: the spans and metrics of the streams the shutdown ended.
if (telemetry !== undefined) app.addHook('onClose', telemetry.close)

// app.close() runs the plugin's preClose hook: open streams end with a
// FST_ERR_CQRS_STREAM_SHUTDOWN error frame and their handlers are aborted.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.log.info({ signal }, 'shutting down')
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed')
        process.exit(1)
      }
    )
  })
}

await app.listen({ port, host })
const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host
app.log.info(`orders demo: open ${tls === undefined ? 'http' : 'https'}://${shown}:${(app.server.address() as { port: number }).port}/`)
if (telemetry !== undefined) {
  const metricsHost = otelConfig!.metricsHost === '0.0.0.0' || otelConfig!.metricsHost === '::' ? 'localhost' : otelConfig!.metricsHost
  app.log.info(`OpenTelemetry: metrics at http://${metricsHost}:${telemetry.metricsPort}/metrics, traces to ${otelConfig!.traces}`)
}
