import { randomUUID } from 'node:crypto'
import type { FastifyReply } from 'fastify'
import { InvalidSourceError, ShutdownError } from '../errors.js'
import { EventStreamWriter, type EventStreamSource } from '../sse/event-stream-writer.js'
import type { Serializer } from '../sse/frame-encoder.js'
import { validateStreamSettings, type EventStreamSettings } from './plugin-options.js'

/**
 * Options of `reply.eventStream()`; unset ones come from the plugin options.
 * @example
 * reply.eventStream(source, { heartbeatMs: 5000, namedEvents: true })
 */
export interface EventStreamOptions<T = unknown> extends EventStreamSettings {
  /**
   * Turns an item into single-line JSON for its `progress` frame.
   * `streamRoute` compiles one from the response schema.
   * @default JSON.stringify
   */
  serialize?: Serializer<T>
  /** The stream's id, used in frame ids. @default a random UUID */
  streamId?: string
}

/** The open SSE responses of one app, ended on `app.close()`. */
export class OpenStreams {
  readonly writers = new Set<EventStreamWriter<unknown>>()
  closing = false

  /**
   * Terminate every open stream with a shutdown `error` frame; resolves when
   * every response is closed, clients that do not read within `graceMs`
   * being disconnected.
   */
  shutdown (graceMs: number): Promise<void[]> {
    this.closing = true
    const reason = new ShutdownError()
    const done: Promise<void>[] = []
    for (const writer of this.writers) {
      writer.terminate(reason, graceMs)
      done.push(writer.done)
    }
    return Promise.all(done)
  }
}

function isSource (value: unknown): value is EventStreamSource<unknown> {
  return typeof value === 'function' ||
    (typeof value === 'object' && value !== null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function')
}

/** Plugin-wide defaults of the SSE settings. */
export type StreamDefaults = Required<Pick<EventStreamSettings, 'heartbeatMs' | 'namedEvents'>> & Pick<EventStreamSettings, 'retryMs'>

/**
 * Hijacks `reply` and streams `source` as SSE. `trusted` marks a call from
 * `streamRoute`: its settings were checked at registration, once, and its
 * serialiser is compiled by this package, whose output needs no line-break
 * check. Neither check is repeated per stream.
 */
export function startEventStream<T> (
  reply: FastifyReply,
  source: EventStreamSource<T>,
  options: EventStreamOptions<T>,
  defaults: StreamDefaults,
  open: OpenStreams,
  trusted: boolean
): FastifyReply {
  if (!isSource(source)) throw new InvalidSourceError()
  if (!trusted) validateStreamSettings(options)
  const writer = new EventStreamWriter<T>(reply.raw, {
    streamId: options.streamId ?? randomUUID(),
    serialize: options.serialize,
    untrusted: !trusted && options.serialize !== undefined,
    namedEvents: options.namedEvents ?? defaults.namedEvents,
    retryMs: options.retryMs ?? defaults.retryMs,
    heartbeatMs: options.heartbeatMs ?? defaults.heartbeatMs,
    headers: reply.getHeaders() as Record<string, string>,
    logger: reply.log,
    onEnd: (ended) => { open.writers.delete(ended as EventStreamWriter<unknown>) },
  })
  reply.hijack()
  open.writers.add(writer as EventStreamWriter<unknown>)
  writer.start(source)
  if (open.closing) writer.terminate(new ShutdownError())
  return reply
}
