import { randomUUID } from 'node:crypto'
import type { FastifyReply } from 'fastify'
import { InvalidSourceError, ShutdownError } from '../errors.js'
import { SseConnection } from '../sse/sse-connection.js'
import { MediatorStream } from '../mediator/mediator-stream.js'
import { StreamRun, type EventStreamSource, type RunResume } from '../sse/stream-run.js'
import type { Serializer } from '../sse/frame-encoder.js'
import { lastEventIdOf } from './last-event-id.js'
import type { Admission } from './admission.js'
import type { OpenStreams } from './open-streams.js'
import { validateStreamSettings, type EventStreamSettings } from './plugin-options.js'
import { noContent } from './reconnect.js'

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
  /**
   * A request carrying `Last-Event-ID` (or a `lastEventId` query parameter)
   * is a reconnect and gets 204 No Content, which stops `EventSource` for
   * good, without touching `source`. Set this for live feeds that should
   * start again on a reconnect.
   * @default false
   */
  restartOnReconnect?: boolean
}

/** Plugin-wide defaults of the SSE settings. */
export type StreamDefaults = Required<Pick<EventStreamSettings, 'heartbeatMs' | 'namedEvents'>> & Pick<EventStreamSettings, 'retryMs'>

/** What `streamRoute` adds for its resumable streams. */
export interface RouteResume extends Omit<RunResume, 'store'> {
  /** Where the client can DELETE the stream; `<id>` is replaced. */
  readonly cancelPath: string
}

// Reconnecting clients wait this long when a resumable stream sets no retryMs.
const RESUME_RETRY_MS = 1000

function isSource (value: unknown): value is EventStreamSource<unknown> {
  return typeof value === 'function' ||
    (typeof value === 'object' && value !== null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function')
}

// A source built for a request that will not run it: a mediator stream
// is lazy, so returning it releases it without ever starting the handler.
function release (source: EventStreamSource<unknown>): void {
  if (typeof source === 'function') return
  const iterator = source as Partial<AsyncIterator<unknown>>
  iterator.return?.()?.then(undefined, () => {})
}

/**
 * `reply.eventStream()`: hijacks `reply` and streams `source` as SSE. A
 * reconnect (`Last-Event-ID`) gets 204 and `source` never runs, unless
 * `restartOnReconnect` is set.
 */
export function startEventStream<T> (
  reply: FastifyReply,
  source: EventStreamSource<T>,
  options: EventStreamOptions<T>,
  defaults: StreamDefaults,
  open: OpenStreams,
  admission: Admission
): FastifyReply {
  if (!isSource(source)) throw new InvalidSourceError()
  validateStreamSettings(options)
  if (options.restartOnReconnect !== true && lastEventIdOf(reply.request) !== undefined) {
    release(source as EventStreamSource<unknown>)
    return noContent(reply)
  }
  try {
    admission.admit(reply, undefined)
  } catch (error) {
    release(source as EventStreamSource<unknown>)
    throw error
  }
  return startRun(reply, source, options, defaults, open, false)
}

/**
 * Starts a new execution of `source` on `reply`. `trusted` marks a call
 * from `streamRoute`: its serialiser is compiled by this package, whose
 * output needs no line-break check. `streamId`, when given, overrides
 * `options.streamId` (a route's options are shared by its requests).
 */
export function startRun<T> (
  reply: FastifyReply,
  source: EventStreamSource<T>,
  options: EventStreamOptions<T>,
  defaults: StreamDefaults,
  open: OpenStreams,
  trusted: boolean,
  resume?: RouteResume,
  streamId: string = options.streamId ?? randomUUID(),
  ownerDigest?: string,
  command?: string
): FastifyReply {
  const retryMs = options.retryMs ?? defaults.retryMs
  const stream = new StreamRun<T>({
    streamId,
    serialize: options.serialize,
    untrusted: !trusted && options.serialize !== undefined,
    namedEvents: options.namedEvents ?? defaults.namedEvents,
    retryMs: resume === undefined ? retryMs : retryMs ?? RESUME_RETRY_MS,
    cancelUrl: resume?.cancelPath.replace('<id>', encodeURIComponent(streamId)),
    resume: resume === undefined ? undefined : { ...resume, store: open.store },
    logger: reply.log,
    onEnd: open.remove as (ended: StreamRun<T>) => void,
    route: reply.request.routeOptions.url,
    command: command ?? (source instanceof MediatorStream ? source.commandName : undefined),
  })
  const connection = new SseConnection(reply.raw, {
    heartbeatMs: options.heartbeatMs ?? defaults.heartbeatMs,
    headers: reply.getHeaders() as Record<string, string>,
    owner: stream,
  })
  reply.hijack()
  open.add(stream as StreamRun<unknown>, ownerDigest)
  stream.start(connection, source)
  if (open.closing) stream.terminate(new ShutdownError())
  return reply
}
