// Type tests of the OpenTelemetry module, fastify-cqrs-stream/otel (see expect.ts).
import { metrics, propagation, trace } from '@opentelemetry/api'
import diagnosticsChannel from 'node:diagnostics_channel'
import {
  channelNames, type BrokerMessage, type FollowMessage, type FollowOutcome, type MessageBroker, type PublishMessage, type RunEndMessage, type RunOutcome, type TwoStepPendingMessage,
} from '../../src/index.js'
import { attributeNames, instrument, metricNames, type Instrumentation, type InstrumentOptions } from '../../src/otel/index.js'
import { expectExact, use } from './expect.js'

export function wire (): void {
  // Global providers by default, or given ones.
  const otel = instrument()
  expectExact<Instrumentation>()(otel)
  expectExact<void>()(otel.uninstrument())
  const options: InstrumentOptions = { tracerProvider: trace.getTracerProvider(), meterProvider: metrics.getMeterProvider() }
  use(instrument(options))
  use(instrument({ propagator: propagation }))
  // @ts-expect-error a propagator has inject and extract
  use(instrument({ propagator: {} }))
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
    expectExact<Record<string, string>>()(run.traceContext)
  })
  diagnosticsChannel.subscribe(channelNames.publishStart, (message) => {
    const { streamId, headers, system } = message as PublishMessage
    // Undefined for an outbox relay's send.
    expectExact<string | undefined>()(streamId)
    expectExact<Record<string, string>>()(headers)
    expectExact<string | undefined>()(system)
  })
  diagnosticsChannel.subscribe(channelNames.followEnd, (message) => {
    const { outcome, ownerTraceContext } = message as FollowMessage
    expectExact<FollowOutcome | undefined>()(outcome)
    expectExact<Readonly<Record<string, string>>>()(ownerTraceContext)
  })
  diagnosticsChannel.subscribe(channelNames.twoStepPending, (message) => {
    expectExact<1 | -1>()((message as TwoStepPendingMessage).change)
  })
  // Headers travel with a broker message; a broker may name its messaging system.
  const sent: BrokerMessage = { messageName: 'A', messageId: 'id', topic: 't', payload: {}, headers: { traceparent: '00-…' } }
  const broker: MessageBroker = { messagingSystem: 'kafka', async send (message) { use(message.headers?.traceparent) } }
  use(broker.send(sent))
}
