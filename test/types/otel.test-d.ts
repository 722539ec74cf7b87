// Type tests of the OpenTelemetry module, fastify-cqrs-stream/otel (see expect.ts).
import { metrics, trace } from '@opentelemetry/api'
import diagnosticsChannel from 'node:diagnostics_channel'
import { channelNames, type RunEndMessage, type RunOutcome } from '../../src/index.js'
import { attributeNames, instrument, metricNames, type Instrumentation, type InstrumentOptions } from '../../src/otel/index.js'
import { expectExact, use } from './expect.js'

export function wire (): void {
  // Global providers by default, or given ones.
  const otel = instrument()
  expectExact<Instrumentation>()(otel)
  expectExact<void>()(otel.uninstrument())
  const options: InstrumentOptions = { tracerProvider: trace.getTracerProvider(), meterProvider: metrics.getMeterProvider() }
  use(instrument(options))
  // @ts-expect-error a tracer is not a provider
  use(instrument({ tracerProvider: trace.getTracer('x') }))
  expectExact<'cqrs_stream.outcome'>()(attributeNames.outcome)
  expectExact<'messaging.client.operation.duration'>()(metricNames.publishDuration)

  // The channels it reads are public: a subscriber of one's own gets typed messages by casting.
  diagnosticsChannel.subscribe(channelNames.runEnd, (message) => {
    const { outcome, frames, run } = message as RunEndMessage
    expectExact<RunOutcome>()(outcome)
    expectExact<number>()(frames)
    expectExact<string | undefined>()(run.command)
  })
}
