import fastJsonStringify from 'fast-json-stringify'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, RouteShorthandOptions } from 'fastify'
import { InvalidRouteError, NoHandlerError } from '../errors.js'
import type { StreamingRequestMediator } from '../mediator/streaming-request-mediator.js'
import { isRequestClass, type RequestClass } from '../messages/request.js'
import type { ResponseClass } from '../messages/response.js'
import type { Serializer } from '../sse/frame-encoder.js'
import type { EventStreamOptions } from './event-stream-reply.js'
import type { EventStreamSettings } from './plugin-options.js'

/**
 * A streaming route: the command comes from the JSON body (`POST`) or the
 * query string (`GET`, for `EventSource`), validated against the request
 * class's schema before anything runs; each result becomes a `progress`
 * frame. Other route options (hooks, config, bodyLimit, schema extras)
 * pass through to Fastify.
 * @example
 * app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
 */
export interface StreamRouteOptions<
  TRequest extends RequestClass = RequestClass,
  TResponse extends ResponseClass = ResponseClass
> extends Omit<RouteShorthandOptions, 'schema'> {
  method: 'GET' | 'POST'
  url: string
  /** The command class; its schema validates the body or query string. */
  request: TRequest
  /** The result class; its schema compiles the `progress` serialiser. */
  response?: TResponse
  /** Schema parts besides the command (`headers`, `params`, `summary`, `tags`…). */
  schema?: Omit<FastifySchema, 'body' | 'querystring'>
  /** SSE settings of this route; unset ones come from the plugin options. */
  eventStream?: EventStreamSettings
}

type Start = (reply: FastifyReply, source: Parameters<FastifyReply['eventStream']>[0], options: EventStreamOptions, trusted: boolean) => FastifyReply

/** Builds the `app.streamRoute` decorator for one mediator. */
export function streamRouteDecorator (mediator: StreamingRequestMediator, start: Start) {
  return function streamRoute (this: FastifyInstance, options: StreamRouteOptions): FastifyInstance {
    if (typeof options !== 'object' || options === null) throw new InvalidRouteError('needs an options object')
    const { method, url, request: RequestType, response, schema, eventStream, ...routeOptions } = options
    if (method !== 'GET' && method !== 'POST') throw new InvalidRouteError(`method must be 'GET' or 'POST', got ${String(method)}`)
    if (typeof url !== 'string') throw new InvalidRouteError('needs a url')
    if (!isRequestClass(RequestType)) throw new InvalidRouteError('option "request" must be a class made by Request()')
    if (!mediator.requestMap.has(RequestType)) throw new NoHandlerError(RequestType.name, RequestType.name)
    const serialize = response === undefined
      ? undefined
      : fastJsonStringify(response.schema as Parameters<typeof fastJsonStringify>[0]) as Serializer<unknown>
    const streamOptions: EventStreamOptions = { ...eventStream, serialize }
    const commandIn = method === 'GET' ? 'querystring' : 'body'

    this.route({
      ...routeOptions,
      method,
      url,
      schema: { ...schema, [commandIn]: RequestType.schema },
      handler (request: FastifyRequest, reply: FastifyReply) {
        const command = new RequestType(method === 'GET' ? request.query as never : request.body as never)
        return start(reply, ({ signal, streamId }) =>
          mediator.stream(command, { signal, streamId, values: { fastifyRequest: request } }), streamOptions, true)
      },
    })
    return this
  }
}
