import { context, ROOT_CONTEXT, defaultTextMapGetter, defaultTextMapSetter, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapPropagator, type Tracer } from '@opentelemetry/api'
import type { EventHandlerCallMessage, FollowMessage, PublishMessage, RunEndMessage, RunEventMessage, RunStartMessage } from '../diagnostics.js'

/** The attributes this package sets, besides the conventional ones (`http.route`, `messaging.*`). */
export const attributeNames = Object.freeze({
  streamId: 'cqrs_stream.stream.id',
  command: 'cqrs_stream.command',
  resumable: 'cqrs_stream.resumable',
  outcome: 'cqrs_stream.outcome',
  frames: 'cqrs_stream.frames',
  items: 'cqrs_stream.items',
  bytes: 'cqrs_stream.bytes',
  reconnects: 'cqrs_stream.reconnects',
  event: 'cqrs_stream.event',
  handler: 'cqrs_stream.handler',
})

function recordError (span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error))
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
}

/**
 * The spans of streams: one per SSE stream from its start to its last frame,
 * children per event handler call and broker send. A stream's span is
 * found by its id for its children; it is forgotten at its end.
 */
export class StreamSpans {
  readonly #tracer: Tracer
  readonly #propagator: TextMapPropagator
  readonly #runs = new Map<string, Span>()
  readonly #calls = new WeakMap<object, Span>()

  constructor (tracer: Tracer, propagator: TextMapPropagator) {
    this.#tracer = tracer
    this.#propagator = propagator
  }

  runStart (run: RunStartMessage): void {
    // Published in the request's async context: the HTTP span, if any, is the parent.
    const attributes: Attributes = { [attributeNames.streamId]: run.streamId, [attributeNames.resumable]: run.resumable }
    if (run.route !== undefined) attributes['http.route'] = run.route
    if (run.command !== undefined) attributes[attributeNames.command] = run.command
    const span = this.#tracer.startSpan(`stream ${run.command ?? run.route ?? 'eventStream'}`, { kind: SpanKind.SERVER, attributes })
    this.#runs.set(run.streamId, span)
    // Kept by a shared store with a resumable stream: a follower elsewhere links to this span.
    if (run.resumable) this.#propagator.inject(trace.setSpan(context.active(), span), run.traceContext, defaultTextMapSetter)
  }

  runEvent ({ run, name }: RunEventMessage): void {
    this.#runs.get(run.streamId)?.addEvent(name)
  }

  runEnd ({ run, outcome, error, frames, items, bytes, reconnects }: RunEndMessage): void {
    const span = this.#runs.get(run.streamId)
    if (span === undefined) return
    this.#runs.delete(run.streamId)
    span.setAttributes({
      [attributeNames.outcome]: outcome,
      [attributeNames.frames]: frames,
      [attributeNames.items]: items,
      [attributeNames.bytes]: bytes,
      [attributeNames.reconnects]: reconnects,
    })
    if (outcome === 'error') recordError(span, error)
    span.end()
  }

  followStart (follow: FollowMessage): void {
    const owner = trace.getSpanContext(this.#propagator.extract(ROOT_CONTEXT, follow.ownerTraceContext, defaultTextMapGetter))
    // A child of this request's span, linked to the owner's (another trace, on another instance).
    this.#calls.set(follow, this.#tracer.startSpan(`follow ${follow.route}`, {
      kind: SpanKind.SERVER,
      attributes: { [attributeNames.streamId]: follow.streamId, 'http.route': follow.route },
      ...(owner === undefined ? {} : { links: [{ context: owner }] }),
    }))
  }

  followEnd (follow: FollowMessage): void {
    const span = this.#calls.get(follow)
    if (span === undefined) return
    this.#calls.delete(follow)
    span.setAttributes({ [attributeNames.outcome]: follow.outcome!, [attributeNames.frames]: follow.frames })
    span.end()
  }

  callStart (call: EventHandlerCallMessage): void {
    this.#calls.set(call, this.#tracer.startSpan(`event ${call.eventName} ${call.handlerName}`, {
      kind: SpanKind.INTERNAL,
      attributes: { [attributeNames.streamId]: call.streamId, [attributeNames.event]: call.eventName, [attributeNames.handler]: call.handlerName },
    }, this.#parentOf(call.streamId)))
  }

  callEnd (call: EventHandlerCallMessage): void {
    this.#finish(call, call.error)
  }

  publishStart (publish: PublishMessage): void {
    // A relay's send continues the trace of the stream that wrote the row.
    const parent = publish.streamId === undefined
      ? this.#propagator.extract(context.active(), publish.headers, defaultTextMapGetter)
      : this.#parentOf(publish.streamId)
    const span = this.#tracer.startSpan(`publish ${publish.topic}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        ...(publish.streamId === undefined ? {} : { [attributeNames.streamId]: publish.streamId }),
        ...(publish.system === undefined ? {} : { 'messaging.system': publish.system }),
        ...(publish.system === 'rabbitmq' ? { 'messaging.rabbitmq.destination.routing_key': publish.topic } : {}),
        'messaging.operation.name': 'publish',
        'messaging.operation.type': 'send',
        'messaging.destination.name': publish.topic,
        'messaging.message.id': publish.messageId,
        [attributeNames.event]: publish.messageName,
      },
    }, parent)
    this.#calls.set(publish, span)
    // The consumer's side continues from this span (W3C `traceparent` with the default propagator).
    this.#propagator.inject(trace.setSpan(parent, span), publish.headers, defaultTextMapSetter)
  }

  publishEnd (publish: PublishMessage): void {
    this.#finish(publish, publish.error)
  }

  #parentOf (streamId: string): Context {
    const run = this.#runs.get(streamId)
    return run === undefined ? context.active() : trace.setSpan(context.active(), run)
  }

  #finish (message: object, error: unknown): void {
    const span = this.#calls.get(message)
    if (span === undefined) return
    this.#calls.delete(message)
    if (error !== undefined) recordError(span, error)
    span.end()
  }
}
