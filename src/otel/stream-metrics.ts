import type { Attributes, Counter, Histogram, Meter, UpDownCounter } from '@opentelemetry/api'
import type { EventHandlerCallMessage, PublishMessage, RunEndMessage, RunEventMessage, RunStartMessage, TwoStepPendingMessage } from '../diagnostics.js'

/** The instruments' names (documented in docs/observability.md). */
export const metricNames = Object.freeze({
  openStreams: 'cqrs_stream.streams.open',
  streamDuration: 'cqrs_stream.stream.duration',
  frames: 'cqrs_stream.frames',
  bytes: 'cqrs_stream.bytes',
  reconnects: 'cqrs_stream.reconnects',
  eventHandlerDuration: 'cqrs_stream.event_handler.duration',
  publishDuration: 'messaging.client.operation.duration',
  twoStepPending: 'cqrs_stream.two_step.pending',
})

// Bucket advice: these record seconds, and the SDK's default buckets
// (0 to 10,000) suit milliseconds. A view still overrides them.
const STREAM_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
const CALL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

const errorType = (error: unknown): string =>
  (error as { code?: unknown } | null)?.code?.toString() ?? (error instanceof Error ? error.name : 'error')

/** A route's running totals, observed when the metrics are collected. */
interface RouteTotals {
  readonly attributes: Attributes
  // One attributes object per outcome, made once.
  readonly byOutcome: Map<string, Attributes>
  open: number
  frames: number
  bytes: number
}

/**
 * Stream, event handler and publish metrics, by route, outcome, event and
 * topic. Open streams, frames and bytes are running totals per route,
 * observed at collection: a stream's start and end touch no instrument but
 * the duration histogram (per-stream setup cost, issue #14).
 */
export class StreamMetrics {
  readonly #duration: Histogram
  readonly #routes = new Map<string | undefined, RouteTotals>()
  readonly #reconnects: Counter
  readonly #handlerDuration: Histogram
  readonly #publishDuration: Histogram
  readonly #twoStepPending: UpDownCounter
  // When each run, call and send began (performance.now()).
  readonly #started = new WeakMap<object, number>()

  constructor (meter: Meter) {
    const open = meter.createObservableUpDownCounter(metricNames.openStreams, { description: 'SSE streams running now', unit: '{stream}' })
    this.#duration = meter.createHistogram(metricNames.streamDuration, { description: 'From the start frame to the last', unit: 's', advice: { explicitBucketBoundaries: STREAM_BUCKETS } })
    const frames = meter.createObservableCounter(metricNames.frames, { description: 'SSE frames sent (added when a stream ends)', unit: '{frame}' })
    const bytes = meter.createObservableCounter(metricNames.bytes, { description: 'UTF-8 bytes of the frames written to clients (added when a stream ends)', unit: 'By' })
    meter.addBatchObservableCallback((result) => {
      for (const totals of this.#routes.values()) {
        result.observe(open, totals.open, totals.attributes)
        result.observe(frames, totals.frames, totals.attributes)
        result.observe(bytes, totals.bytes, totals.attributes)
      }
    }, [open, frames, bytes])
    this.#reconnects = meter.createCounter(metricNames.reconnects, { description: 'Reconnects served, and follows from other instances', unit: '{reconnect}' })
    this.#handlerDuration = meter.createHistogram(metricNames.eventHandlerDuration, { description: 'One event handler call', unit: 's', advice: { explicitBucketBoundaries: CALL_BUCKETS } })
    this.#publishDuration = meter.createHistogram(metricNames.publishDuration, { description: 'A notification sent to the broker, to its confirm', unit: 's', advice: { explicitBucketBoundaries: CALL_BUCKETS } })
    this.#twoStepPending = meter.createUpDownCounter(metricNames.twoStepPending, { description: 'Two-step commands posted here and not yet taken (on any instance) or expired', unit: '{command}' })
  }

  runStart (run: RunStartMessage): void {
    this.#started.set(run, performance.now())
    this.#totals(run.route).open++
  }

  runEvent ({ run, name }: RunEventMessage): void {
    if (name !== 'disconnect') this.#reconnects.add(1, { ...this.#totals(run.route).attributes, 'cqrs_stream.reconnect.kind': name })
  }

  runEnd ({ run, outcome, frames, bytes }: RunEndMessage): void {
    // A run that began before instrument() was called is not counted.
    if (!this.#started.has(run)) return
    const totals = this.#totals(run.route)
    totals.open--
    totals.frames += frames
    totals.bytes += bytes
    let attributes = totals.byOutcome.get(outcome)
    if (attributes === undefined) {
      attributes = { ...totals.attributes, 'cqrs_stream.outcome': outcome }
      totals.byOutcome.set(outcome, attributes)
    }
    this.#duration.record(this.#seconds(run), attributes)
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

  twoStepPending ({ route, change }: TwoStepPendingMessage): void {
    this.#twoStepPending.add(change, { 'http.route': route })
  }

  #totals (route: string | undefined): RouteTotals {
    let totals = this.#routes.get(route)
    if (totals === undefined) {
      totals = { attributes: route === undefined ? {} : { 'http.route': route }, byOutcome: new Map(), open: 0, frames: 0, bytes: 0 }
      this.#routes.set(route, totals)
    }
    return totals
  }

  #seconds (message: object): number {
    const started = this.#started.get(message)!
    this.#started.delete(message)
    return (performance.now() - started) / 1000
  }
}
