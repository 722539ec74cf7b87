import type { FastifyRequest, FastifySchema, RouteShorthandOptions } from 'fastify'
import type { TObject } from '@sinclair/typebox'
import type { MessageClass } from '../messages/message.js'
import type { RequestMessage } from '../messages/request.js'
import type { ResponseMessage } from '../messages/response.js'
import type { resultType, ResultInfo } from '../messages/result-type.js'
import type { ResumeSettings } from '../resume/resume-settings.js'
import type { StreamOwner } from './stream-owner.js'
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

/** Any request class, as `streamRoute` takes it. */
// Not `RequestClass`: its defaults (`Static<TObject>`, an index signature)
// accept no concrete class.
export type StreamRequestClass = MessageClass<TObject, RequestMessage> & (new (data: never) => RequestMessage)

/** Any response class, as `streamRoute({ response })` takes it. */
export type StreamResponseClass = MessageClass<TObject, ResponseMessage> & (abstract new (data: never) => ResponseMessage)

/**
 * What `response` may be for a route of `TRequest`: its own `result` class
 * (or nothing) when it declares one, nothing when its result is a bare
 * schema, any response class when it has no result.
 */
export type ResponseOptionOf<TRequest> =
  TRequest extends abstract new (data: never) => infer I
    ? I extends { readonly [resultType]: ResultInfo<true, unknown, unknown, infer R> }
      ? R extends StreamResponseClass ? R : never
      : StreamResponseClass
    : StreamResponseClass

/**
 * A streaming route: the command comes from the JSON body (`POST`) or the
 * query string (`GET`, for `EventSource`), validated against the request
 * class's schema before anything runs; each result becomes a `progress`
 * frame, serialised (and documented in OpenAPI) by the request class's
 * `result`. Other route options (hooks, config, bodyLimit, schema extras)
 * pass through to Fastify, and to the `<url>/:streamId` routes that
 * `resume` and `twoStep` add.
 * @example
 * app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand })
 */
export interface StreamRouteOptions<TRequest extends StreamRequestClass = StreamRequestClass>
  extends Omit<RouteShorthandOptions, 'schema'> {
  method: 'GET' | 'POST'
  url: string
  /** The command class; its schema validates the body or query string. */
  request: TRequest
  /**
   * The result class, for a request declared without `result`: its schema
   * compiles the `progress` serialiser and documents the frames. A request
   * with `result` needs none (given, it must be that class).
   */
  response?: ResponseOptionOf<TRequest> | undefined
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
  /**
   * Who this route's streams belong to, instead of the plugin's
   * `streamOwner`. The `DELETE <url>/:streamId` route that a GET and a POST
   * route of one url share uses the first one's.
   */
  streamOwner?: StreamOwner | undefined
  /**
   * What the handler may know of the request that sent the command (a user
   * id, roles), registered in the stream's scope as `caller`. Taken from
   * the request that starts the stream: for `twoStep`, the POST, and kept
   * with the command as JSON (so it must be a JSON value), because the
   * handler runs for the GET, on whichever instance it reaches, with the
   * GET's request as `fastifyRequest`. Without it, `caller` is undefined.
   * @example
   * // An auth hook decorated request.user on the POST:
   * caller: (request) => ({ userId: request.user.id })
   * // and the handler reads it from its scope:
   * constructor ({ caller }: { caller: { userId: string } }) { … }
   */
  caller?: ((request: FastifyRequest) => unknown) | undefined
}

export const TWO_STEP_DEFAULTS: Required<TwoStepSettings> = { claimTimeoutMs: 30_000 }
