// fastify-cqrs-stream/otel: OpenTelemetry traces and metrics for streams,
// on @opentelemetry/api (an optional peer dependency). Only this entry point
// loads it; the main entry publishes to diagnostics_channel, for free while
// nothing listens.
export { instrument } from './instrument.js'
export type { InstrumentOptions, Instrumentation } from './instrument.js'
export { attributeNames } from './stream-spans.js'
export { metricNames } from './stream-metrics.js'
