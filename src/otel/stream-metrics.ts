import type { Attributes, Counter, Histogram, Meter, UpDownCounter } from '@opentelemetry/api'
import type { EventHandlerCallMessage, PublishMessage, RunEndMessage, RunEventMessage, RunStartMessage } from '../diagnostics.js'

/** The instruments' names (documented in docs/observability.md). */
export const metricNames = Object.freeze({
  openStreams: 'cqrs_stream.streams.open',
  streamDuration: 'cqrs_stream.stream.duration',
  frames: 'cqrs_stream.frames',
  bytes: 'cqrs_stream.bytes',
  reconnects: 'cqrs_stream.reconnects',
  eventHandlerDuration: 'cqrs_stream.event_handler.duration',
  publishDuration: 'messaging.client.operation.duration',
})

const errorType = (error: unknown): string =>
  (error as { code?: unknown } | null)?.code?.toString() ?? (error instanceof Error ? error.name : 'error')

/** Stream, event handler and publish metrics, by route, outcome, event and topic. */
export class StreamMetrics {
  readonly #open: UpDownCounter
  readonly #duration: Histogram
  readonly #frames: Counter
  readonly #bytes: Counter
  readonly #reconnects: Counter
  readonly #handlerDuration: Histogram
  readonly #publishDuration: Histogram
  // When each run, call and send began (performance.now()).
  readonly #started = new WeakMap<object, number>()

  constructor (meter: Meter) {
    this.#open = meter.createUpDownCounter(metricNames.openStreams, { description: 'SSE streams running now', unit: '{stream}' })
    this.#duration = meter.createHistogram(metricNames.streamDuration, { description: 'From the start frame to the last', unit: 's' })
    this.#frames = meter.createCounter(metricNames.frames, { description: 'SSE frames sent', unit: '{frame}' })
    this.#bytes = meter.createCounter(metricNames.bytes, { description: 'UTF-8 bytes of the frames sent', unit: 'By' })
    this.#reconnects = meter.createCounter(metricNames.reconnects, { description: 'Reconnects served, and follows from other instances', unit: '{reconnect}' })
    this.#handlerDuration = meter.createHistogram(metricNames.eventHandlerDuration, { description: 'One event handler call', unit: 's' })
    this.#publishDuration = meter.createHistogram(metricNames.publishDuration, { description: 'A notification sent to the broker, to its confirm', unit: 's' })
  }

  runStart (run: RunStartMessage): void {
    this.#started.set(run, performance.now())
    this.#open.add(1, routeOf(run))
  }

  runEvent ({ run, name }: RunEventMessage): void {
    if (name !== 'disconnect') this.#reconnects.add(1, { ...routeOf(run), 'cqrs_stream.reconnect.kind': name })
  }

  runEnd ({ run, outcome, frames, bytes }: RunEndMessage): void {
    // A run that began before instrument() was called is not counted.
    if (!this.#started.has(run)) return
    const attributes = routeOf(run)
    this.#open.add(-1, attributes)
    this.#frames.add(frames, attributes)
    this.#bytes.add(bytes, attributes)
    this.#duration.record(this.#seconds(run), { ...attributes, 'cqrs_stream.outcome': outcome })
  }

  callStart (call: EventHandlerCallMessage): void {
    this.#started.set(call, performance.now())
  }

  callEnd (call: EventHandlerCallMessage): void {
    if (!this.#started.has(call)) return
    this.#handlerDuration.record(this.#seconds(call), {
      'cqrs_stream.event': call.eventName,
      'cqrs_stream.handler': call.handlerName,
      ...(call.error === undefined ? {} : { 'error.type': errorType(call.error) }),
    })
  }

  publishStart (publish: PublishMessage): void {
    this.#started.set(publish, performance.now())
  }

  publishEnd (publish: PublishMessage): void {
    if (!this.#started.has(publish)) return
    this.#publishDuration.record(this.#seconds(publish), {
      'messaging.operation.name': 'publish',
      'messaging.destination.name': publish.topic,
      ...(publish.error === undefined ? {} : { 'error.type': errorType(publish.error) }),
    })
  }

  #seconds (message: object): number {
    const started = this.#started.get(message)!
    this.#started.delete(message)
    return (performance.now() - started) / 1000
  }
}

function routeOf (run: RunStartMessage): Attributes {
  return run.route === undefined ? {} : { 'http.route': run.route }
}
