import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from '@opentelemetry/api'
import type { EventHandlerCallMessage, PublishMessage, RunEndMessage, RunEventMessage, RunStartMessage } from '../diagnostics.js'

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
  readonly #runs = new Map<string, Span>()
  readonly #calls = new WeakMap<object, Span>()

  constructor (tracer: Tracer) {
    this.#tracer = tracer
  }

  runStart (run: RunStartMessage): void {
    // Published in the request's async context: the HTTP span, if any, is the parent.
    const span = this.#tracer.startSpan(`stream ${run.command ?? run.route ?? 'eventStream'}`, {
      kind: SpanKind.SERVER,
      attributes: {
        [attributeNames.streamId]: run.streamId,
        [attributeNames.resumable]: run.resumable,
        ...(run.route === undefined ? {} : { 'http.route': run.route }),
        ...(run.command === undefined ? {} : { [attributeNames.command]: run.command }),
      },
    })
    this.#runs.set(run.streamId, span)
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
    this.#calls.set(publish, this.#tracer.startSpan(`publish ${publish.topic}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        [attributeNames.streamId]: publish.streamId,
        'messaging.operation.name': 'publish',
        'messaging.operation.type': 'send',
        'messaging.destination.name': publish.topic,
        'messaging.message.id': publish.messageId,
        [attributeNames.event]: publish.messageName,
      },
    }, this.#parentOf(publish.streamId)))
  }

  publishEnd (publish: PublishMessage): void {
    this.#finish(publish, publish.error)
  }

  #parentOf (streamId: string): ReturnType<typeof context.active> {
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
