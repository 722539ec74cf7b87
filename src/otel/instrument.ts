import diagnosticsChannel from 'node:diagnostics_channel'
import { metrics, propagation, trace, type MeterProvider, type TextMapPropagator, type TracerProvider } from '@opentelemetry/api'
import {
  channelNames, type EventHandlerCallMessage, type FollowMessage, type PublishMessage, type TwoStepPendingMessage, type RunEndMessage, type RunEventMessage, type RunStartMessage,
} from '../diagnostics.js'
import { StreamMetrics } from './stream-metrics.js'
import { StreamSpans } from './stream-spans.js'

export interface InstrumentOptions {
  /** Where spans go. Default: the global provider (`trace.setGlobalTracerProvider`, or what the SDK registered). */
  readonly tracerProvider?: TracerProvider
  /** Where metrics go. Default: the global provider. */
  readonly meterProvider?: MeterProvider
  /**
   * Writes a publish span's context into the message's headers, and reads
   * it back from an outbox row's. Default: the global propagator (the SDK
   * registers W3C trace context; without one, no headers are written).
   * @example
   * import { W3CTraceContextPropagator } from '@opentelemetry/core'
   * instrument({ tracerProvider, propagator: new W3CTraceContextPropagator() })
   */
  readonly propagator?: TextMapPropagator
}

/** What {@link instrument} returns. */
export interface Instrumentation {
  /** Stops creating spans and metrics; streams running now are no longer followed. */
  uninstrument (): void
}

type Subscriber = (message: unknown) => void

/**
 * Traces and metrics for every stream of this process, from the package's
 * `diagnostics_channel` channels: a span per SSE stream (`stream
 * <CommandName>`, a child of the request's span when an HTTP
 * instrumentation made one), a span per event handler call and per broker
 * send, and stream, event handler and publish metrics. Nothing is created
 * before it is called, and a process that never calls it pays nothing.
 * @example
 * import { instrument } from 'fastify-cqrs-stream/otel'
 * // after the OpenTelemetry SDK is set up (NodeSDK.start(), or providers registered)
 * const otel = instrument()
 * app.addHook('onClose', () => otel.uninstrument())
 */
export function instrument (options: InstrumentOptions = {}): Instrumentation {
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer('fastify-cqrs-stream')
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter('fastify-cqrs-stream')
  const spans = new StreamSpans(tracer, options.propagator ?? propagation)
  const counters = new StreamMetrics(meter)
  const subscriptions: Array<[string, Subscriber]> = [
    [channelNames.runStart, (m) => { spans.runStart(m as RunStartMessage); counters.runStart(m as RunStartMessage) }],
    [channelNames.runEvent, (m) => { spans.runEvent(m as RunEventMessage); counters.runEvent(m as RunEventMessage) }],
    [channelNames.runEnd, (m) => { spans.runEnd(m as RunEndMessage); counters.runEnd(m as RunEndMessage) }],
    [channelNames.eventHandlerStart, (m) => { spans.callStart(m as EventHandlerCallMessage); counters.callStart(m as EventHandlerCallMessage) }],
    [channelNames.eventHandlerEnd, (m) => { spans.callEnd(m as EventHandlerCallMessage); counters.callEnd(m as EventHandlerCallMessage) }],
    [channelNames.publishStart, (m) => { spans.publishStart(m as PublishMessage); counters.publishStart(m as PublishMessage) }],
    [channelNames.publishEnd, (m) => { spans.publishEnd(m as PublishMessage); counters.publishEnd(m as PublishMessage) }],
    [channelNames.followStart, (m) => { spans.followStart(m as FollowMessage) }],
    [channelNames.followEnd, (m) => { spans.followEnd(m as FollowMessage) }],
    [channelNames.twoStepPending, (m) => { counters.twoStepPending(m as TwoStepPendingMessage) }],
  ]
  for (const [name, subscriber] of subscriptions) diagnosticsChannel.subscribe(name, subscriber)
  let active = true
  return {
    uninstrument () {
      if (!active) return
      active = false
      for (const [name, subscriber] of subscriptions) diagnosticsChannel.unsubscribe(name, subscriber)
    },
  }
}
