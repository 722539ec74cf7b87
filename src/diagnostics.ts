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

export const streamStartChannel = diagnosticsChannel.channel(channelNames.streamStart)
export const streamEndChannel = diagnosticsChannel.channel(channelNames.streamEnd)
export const eventHandlerErrorChannel = diagnosticsChannel.channel(channelNames.eventHandlerError)
export const streamRefusedChannel = diagnosticsChannel.channel(channelNames.streamRefused)
