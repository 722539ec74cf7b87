import { DuplicateHandlerError, InvalidBindingError, NoHandlerError } from '../errors.js'
import { StreamingRequestHandler, type StreamingRequestHandlerClass } from '../handlers/streaming-request-handler.js'
import type { StreamContext } from '../handlers/stream-context.js'
import type { TObject } from '@sinclair/typebox'
import type { MessageClass } from '../messages/message.js'
import { isRequestClass, type RequestMessage, type ResultOf } from '../messages/request.js'

/**
 * Binds each request class to the one streaming handler class that serves it.
 * @example
 * requests: (map) => map.bind(ProcessOrdersCommand, ProcessOrdersHandler)
 */
export class RequestMap {
  readonly #handlers = new Map<Function, StreamingRequestHandlerClass>()

  /**
   * Bind `request` to `handler`. A second binding of the same request class
   * throws `FST_ERR_CQRS_STREAM_DUPLICATE_HANDLER`.
   */
  bind<TRequest extends RequestMessage> (
    // Not `RequestClass`: its defaults (`Static<TObject>`, an index
    // signature) accept no concrete class.
    request: MessageClass<TObject, TRequest> & (new (...args: never[]) => TRequest),
    // `handle` as a function type: checked contravariantly, unlike a method,
    // so a handler of a request with more fields is rejected. Its items must
    // be the request's result (anything, for a request without `result`).
    handler: StreamingRequestHandlerClass<TRequest> &
      (new (...args: never[]) => { handle: (request: TRequest, context: StreamContext) => AsyncIterable<ResultOf<TRequest>> })
  ): this {
    if (!isRequestClass(request)) throw new InvalidBindingError('RequestMap.bind() takes a class made by Request() as its first argument')
    if (typeof handler !== 'function' || !(handler.prototype instanceof StreamingRequestHandler)) {
      throw new InvalidBindingError(`the handler bound to "${request.name}" must be a class extending StreamingRequestHandler`)
    }
    const bound = this.#handlers.get(request)
    if (bound !== undefined) throw new DuplicateHandlerError(request.name, bound.name, handler.name)
    this.#handlers.set(request, handler as unknown as StreamingRequestHandlerClass)
    return this
  }

  /** The handler class bound to `request`'s class, or undefined. */
  get (request: Function): StreamingRequestHandlerClass | undefined {
    return this.#handlers.get(request)
  }

  /** The handler class bound to `request`'s class; throws `FST_ERR_CQRS_STREAM_NO_HANDLER` if none. */
  require (request: Function): StreamingRequestHandlerClass {
    const handler = this.#handlers.get(request)
    if (handler === undefined) throw new NoHandlerError(request.name, request.name)
    return handler
  }

  /** Whether `request` has a handler. */
  has (request: Function): boolean { return this.#handlers.has(request) }

  /** Every binding, in the order they were made. */
  entries (): IterableIterator<[Function, StreamingRequestHandlerClass]> { return this.#handlers.entries() }
}
