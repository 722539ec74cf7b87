import type { FastifySchema, RouteShorthandOptions } from 'fastify'
import type { TObject } from '@sinclair/typebox'
import type { MessageClass } from '../messages/message.js'
import type { RequestMessage } from '../messages/request.js'
import type { ResponseMessage } from '../messages/response.js'
import type { ResumeSettings } from '../resume/resume-settings.js'
import type { EventStreamSettings } from './plugin-options.js'

/**
 * Splits a command in two requests: `POST url` with the command answers
 * `202 { streamId, url }`, and `GET` of that url (e.g. with `EventSource`,
 * which cannot POST or set headers) runs it and streams its frames.
 * @example
 * app.streamRoute({ method: 'POST', url: '/orders', request: ProcessOrdersCommand, twoStep: { claimTimeoutMs: 10_000 } })
 */
export interface TwoStepSettings {
  /**
   * How long a posted command waits for its GET; unclaimed, it is dropped
   * without running and its url answers 404.
   * @default 30000
   */
  claimTimeoutMs?: number
}

/**
 * A streaming route: the command comes from the JSON body (`POST`) or the
 * query string (`GET`, for `EventSource`), validated against the request
 * class's schema before anything runs; each result becomes a `progress`
 * frame. Other route options (hooks, config, bodyLimit, schema extras)
 * pass through to Fastify, and to the `<url>/:streamId` routes that
 * `resume` and `twoStep` add.
 * @example
 * app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
 */
export interface StreamRouteOptions<
  // Not `RequestClass`/`ResponseClass`: their defaults (`Static<TObject>`,
  // an index signature) accept no concrete class.
  TRequest extends MessageClass<TObject, RequestMessage> & (new (data: never) => RequestMessage) =
  MessageClass<TObject, RequestMessage> & (new (data: never) => RequestMessage),
  TResponse extends MessageClass<TObject, ResponseMessage> = MessageClass<TObject, ResponseMessage>
> extends Omit<RouteShorthandOptions, 'schema'> {
  method: 'GET' | 'POST'
  url: string
  /** The command class; its schema validates the body or query string. */
  request: TRequest
  /** The result class; its schema compiles the `progress` serialiser. */
  response?: TResponse
  /** Schema parts besides the command (`headers`, `summary`, `tags`…). */
  schema?: Omit<FastifySchema, 'body' | 'querystring'>
  /** SSE settings of this route; unset ones come from the plugin options. */
  eventStream?: EventStreamSettings
  /**
   * Streams survive a dropped connection and resume with `Last-Event-ID`;
   * `DELETE <url>/:streamId` cancels one. `true` takes the defaults.
   * @default off, or on with defaults when `twoStep` is set
   */
  resume?: ResumeSettings | true
  /** Accept the command by `POST` and stream it on a `GET` of the returned url. `true` takes the defaults. */
  twoStep?: TwoStepSettings | true
}

export const TWO_STEP_DEFAULTS: Required<TwoStepSettings> = { claimTimeoutMs: 30_000 }
