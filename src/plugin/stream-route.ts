import fastJsonStringify from 'fast-json-stringify'
import {
  errorCodes, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifySchema,
  type preValidationAsyncHookHandler, type RouteShorthandOptions,
} from 'fastify'
import { InvalidRouteError, NoHandlerError } from '../errors.js'
import type { StreamingRequestMediator } from '../mediator/streaming-request-mediator.js'
import type { TObject } from '@sinclair/typebox'
import type { MessageClass } from '../messages/message.js'
import { isRequestClass, type RequestMessage } from '../messages/request.js'
import type { ResponseMessage } from '../messages/response.js'
import type { Serializer } from '../sse/frame-encoder.js'
import type { EventStreamOptions } from './event-stream-reply.js'
import { validateStreamSettings, type EventStreamSettings } from './plugin-options.js'

const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i

// A command is JSON. Without this, Fastify's own text/plain parser hands the
// schema a string and the client gets a puzzling 400 instead of a 415 (a
// browser fetch() with a string body sends text/plain).
const requireJson: preValidationAsyncHookHandler = async (request) => {
  const type = request.headers['content-type']
  if (type !== undefined && !JSON_MEDIA_TYPE.test(type)) throw new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(type)
}

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
    validateStreamSettings(eventStream ?? {})
    const serialize = response === undefined
      ? undefined
      : fastJsonStringify(response.schema as Parameters<typeof fastJsonStringify>[0]) as Serializer<unknown>
    const streamOptions: EventStreamOptions = { ...eventStream, serialize }
    const commandIn = method === 'GET' ? 'querystring' : 'body'

    const preValidation = method === 'POST'
      ? [requireJson, ...[routeOptions.preValidation ?? []].flat()]
      : routeOptions.preValidation
    this.route({
      ...routeOptions,
      preValidation,
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
