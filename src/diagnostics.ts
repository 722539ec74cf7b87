import diagnosticsChannel from 'node:diagnostics_channel'
import type { EventHandlerErrorInfo } from './events/event-handler-error.js'
import type { RequestMessage } from './messages/request.js'

/**
 * Names of the `node:diagnostics_channel` channels this package publishes
 * to, for metrics and tracing without touching handlers. Publishing costs
 * nothing while a channel has no subscriber.
 * @example
 * import diagnosticsChannel from 'node:diagnostics_channel'
 * diagnosticsChannel.subscribe(channelNames.streamEnd, (message) => {
 *   const { streamId, error } = message as StreamEndMessage
 *   metrics.increment(error === undefined ? 'streams_completed' : 'streams_failed')
 * })
 */
export const channelNames = Object.freeze({
  /** A stream's first pull: its scope is created and its handler about to be built. */
  streamStart: 'fastify-cqrs-stream:stream:start',
  /** A stream has ended, whichever way, and its scope is disposed. */
  streamEnd: 'fastify-cqrs-stream:stream:end',
  /** An event handler or broker send failed. */
  eventHandlerError: 'fastify-cqrs-stream:event-handler:error',
  /** A request about a stream of another owner was refused (answered as for an unknown stream). */
  streamRefused: 'fastify-cqrs-stream:stream:refused',
  /** An SSE stream began: its start frame is about to be sent. In the request's async context. */
  runStart: 'fastify-cqrs-stream:run:start',
  /** Something happened to a running SSE stream: its client left, reconnected, or follows it from another instance. */
  runEvent: 'fastify-cqrs-stream:run:event',
  /** An SSE stream ended, with its outcome and what it sent. */
  runEnd: 'fastify-cqrs-stream:run:end',
  /** An event handler is about to handle an event. */
  eventHandlerStart: 'fastify-cqrs-stream:event-handler:start',
  /** An event handler has handled an event, or failed (`error`). The same message object as its start. */
  eventHandlerEnd: 'fastify-cqrs-stream:event-handler:end',
  /** A notification event is about to be sent to the message broker. */
  publishStart: 'fastify-cqrs-stream:publish:start',
  /** The broker took it, or failed (`error`). The same message object as its start. */
  publishEnd: 'fastify-cqrs-stream:publish:end',
  /** A client reconnected here to a stream another instance runs, and follows it from the shared store. In the request's async context. */
  followStart: 'fastify-cqrs-stream:follow:start',
  /** That follower stopped, with its outcome. The same message object as its start. */
  followEnd: 'fastify-cqrs-stream:follow:end',
  /** A two-step command was posted here (`change: 1`), or stopped waiting for its GET: taken on any instance, or expired (`change: -1`). */
  twoStepPending: 'fastify-cqrs-stream:two-step:pending',
})

/** Published on `channelNames.streamStart`. */
export interface StreamStartMessage {
  readonly streamId: string
  readonly request: RequestMessage
}

/** Published on `channelNames.streamEnd`. */
export interface StreamEndMessage extends StreamStartMessage {
  /** Why the stream failed or was stopped; undefined after a normal end or a consumer's `break`. */
  readonly error: unknown
}

/** Published on `channelNames.streamRefused`: a reconnect, claim or cancel by someone who is not the stream's owner. */
export interface StreamRefusedMessage {
  readonly streamId: string
  /** The route's url (its scope). */
  readonly route: string
  /** The refused request: its ip, headers and session tell who tried. */
  readonly request: unknown
}

/** Published on `channelNames.eventHandlerError`. */
export interface EventHandlerErrorMessage extends EventHandlerErrorInfo {
  readonly error: unknown
}

/** How an SSE stream ended. */
export type RunOutcome =
  | 'complete' | 'error' | 'cancel' | 'shutdown'
  /** The client left and the stream was not resumable (or its store failed), or it left before the start. */
  | 'disconnect'
  /** The client of a resumable stream did not come back within `windowMs`. */
  | 'window-expired'
  /** The client of a resumable stream was away for more than `maxBufferedFrames` / `maxBufferedBytes`. */
  | 'overflow'

/** Published on `channelNames.runStart`; the same object is on its `runEvent` and `runEnd` messages as `run`. */
export interface RunStartMessage {
  readonly streamId: string
  /** The route's url; undefined for `reply.eventStream()` outside a route url. */
  readonly route: string | undefined
  /** The command's class name, or undefined for `reply.eventStream()` of a plain iterable. */
  readonly command: string | undefined
  /** Whether the stream is resumable. */
  readonly resumable: boolean
  /**
   * A tracer writes the stream span's context here at the start; a shared
   * store keeps it with the stream, for a follower on another instance.
   */
  readonly traceContext: Record<string, string>
}

/** Published on `channelNames.runEvent`. */
export interface RunEventMessage {
  readonly run: RunStartMessage
  /** `disconnect`: the client left (a resumable stream waits); `reconnect`: a client reconnected here; `follow`: a client follows it from another instance. */
  readonly name: 'disconnect' | 'reconnect' | 'follow'
}

/** Published on `channelNames.runEnd`. */
export interface RunEndMessage {
  readonly run: RunStartMessage
  readonly outcome: RunOutcome
  /** Why it ended early or failed; undefined after `complete`. */
  readonly error: unknown
  /** Frames sent (start, progress, and the last one) and items (`progress` frames) among them. */
  readonly frames: number
  readonly items: number
  /**
   * UTF-8 bytes written to this run's SSE connections while it ran: a
   * reconnect's replay counts, frames a client away never got do not, nor
   * heartbeats, nor what a follower on another instance was sent.
   */
  readonly bytes: number
  /** Reconnects served here, and follows from other instances. */
  readonly reconnects: number
}

/** Published on `channelNames.eventHandlerStart` and (with `error` set on failure) `eventHandlerEnd`. */
export interface EventHandlerCallMessage {
  readonly streamId: string
  readonly eventName: string
  readonly handlerName: string
  error?: unknown
}

/** Published on `channelNames.twoStepPending`. Summed over every instance: the commands waiting for their GET. */
export interface TwoStepPendingMessage {
  readonly streamId: string
  /** The route's url. */
  readonly route: string
  /** 1 when posted; -1 when taken or expired (only for one whose 1 was published). */
  readonly change: 1 | -1
}

/** How a follower of a stream run elsewhere stopped. */
export type FollowOutcome =
  /** The stream's last frame reached the client. */
  | 'complete'
  /** The client left. */
  | 'disconnect'
  /** The store lost the stream, skipped a frame, or failed: the client reconnects. */
  | 'lost'
  /** This instance is closing. */
  | 'shutdown'

/** Published on `channelNames.followStart`, and with `outcome` and `frames` set on `followEnd`. */
export interface FollowMessage {
  readonly streamId: string
  /** The route's scope: its url, unless the route sets `scope`. */
  readonly route: string
  /** The owner's stream span context (W3C `traceparent`), as its store kept it; empty when none. */
  readonly ownerTraceContext: Readonly<Record<string, string>>
  outcome?: FollowOutcome
  /** Frames sent to this client. */
  frames: number
}

/** Published on `channelNames.publishStart` and (with `error` set on failure) `publishEnd`. */
export interface PublishMessage {
  /** The stream that emitted it; undefined for an outbox relay's send. */
  readonly streamId: string | undefined
  readonly messageName: string
  readonly messageId: string
  readonly topic: string
  /** The broker's `messagingSystem` (e.g. `rabbitmq`). */
  readonly system: string | undefined
  /**
   * The headers the message is sent with. A tracer writes the publish
   * span's context here (`traceparent`) at the start; a relay's message
   * brings the headers kept with it (the emitting stream's publish span).
   */
  readonly headers: Record<string, string>
  error?: unknown
}

export const runStartChannel = diagnosticsChannel.channel(channelNames.runStart)
export const runEventChannel = diagnosticsChannel.channel(channelNames.runEvent)
export const runEndChannel = diagnosticsChannel.channel(channelNames.runEnd)
export const eventHandlerStartChannel = diagnosticsChannel.channel(channelNames.eventHandlerStart)
export const eventHandlerEndChannel = diagnosticsChannel.channel(channelNames.eventHandlerEnd)
export const publishStartChannel = diagnosticsChannel.channel(channelNames.publishStart)
export const publishEndChannel = diagnosticsChannel.channel(channelNames.publishEnd)
export const twoStepPendingChannel = diagnosticsChannel.channel(channelNames.twoStepPending)
export const followStartChannel = diagnosticsChannel.channel(channelNames.followStart)
export const followEndChannel = diagnosticsChannel.channel(channelNames.followEnd)
export const streamStartChannel = diagnosticsChannel.channel(channelNames.streamStart)
export const streamEndChannel = diagnosticsChannel.channel(channelNames.streamEnd)
export const eventHandlerErrorChannel = diagnosticsChannel.channel(channelNames.eventHandlerError)
export const streamRefusedChannel = diagnosticsChannel.channel(channelNames.streamRefused)
