import { createContainer } from 'awilix'
import pLimit from 'p-limit'
import { DevNullMessageBroker } from '../brokers/devnull-message-broker.js'
import { CloseTimeoutError, ShutdownError } from '../errors.js'
import { EventDispatcher } from '../events/event-dispatcher.js'
import type { MediatorLogger } from '../events/event-handler-error.js'
import { EventMap } from '../maps/event-map.js'
import { RequestMap } from '../maps/request-map.js'
import type { RequestMessage, ResultOf } from '../messages/request.js'
import type { resultType, ResultInfo, TypedResult } from '../messages/result-type.js'
import { MediatorStream, type MediatorCore, type StreamOptions } from './mediator-stream.js'
import { validateMediatorOptions, type StreamingMediatorOptions } from './mediator-options.js'
import { verifyHandlers } from './verify-handlers.js'

/** Options of {@link StreamingRequestMediator.close}. */
export interface MediatorCloseOptions {
  /** Why the streams end; their next pull rejects with it. @default FST_ERR_CQRS_STREAM_SHUTDOWN */
  reason?: unknown
  /** How long to wait for handlers to stop. @default 10000 */
  timeoutMs?: number
}

const consoleLogger: MediatorLogger = {
  error: (object, message) => console.error(message, object),
  warn: (object, message) => console.warn(message, object),
}

/**
 * Runs streaming commands: `stream(request)` builds the bound handler from a
 * fresh container scope and returns an async iterator of its results, with
 * the events of each item handled before the item is handed on.
 * @example
 * for await (const result of mediator.stream(new ProcessOrdersCommand({ orderIds: ['a'] }))) {
 *   console.log(result)
 * }
 */
export class StreamingRequestMediator {
  /** The request bindings. */
  readonly requestMap: RequestMap
  /** The event bindings. */
  readonly eventMap: EventMap
  readonly #core: MediatorCore

  constructor (options: StreamingMediatorOptions = {}) {
    validateMediatorOptions(options)
    this.requestMap = new RequestMap()
    this.eventMap = new EventMap()
    options.requests?.(this.requestMap)
    options.events?.(this.eventMap)
    const logger = options.logger ?? consoleLogger
    const concurrent = options.concurrentEventHandling ?? true
    this.#core = {
      container: options.container ?? createContainer(),
      requestMap: this.requestMap,
      middlewares: [...(options.middlewares ?? [])],
      logger,
      open: new Set(),
      closed: false,
      dispatcher: new EventDispatcher({
        eventMap: this.eventMap,
        messageBroker: options.messageBroker ?? new DevNullMessageBroker(),
        limit: concurrent ? pLimit(options.maxConcurrentEventHandlers ?? 10) : null,
        failure: options.eventHandlerFailure ?? 'isolate',
        onEventHandlerError: options.onEventHandlerError,
        logger,
      }),
    }
  }

  /**
   * Start a stream of `request`'s results. Nothing runs until the first
   * pull; the handler bound to the request's class is built then. The items
   * are typed by the request class's `result`.
   * @example
   * for await (const result of mediator.stream(new Count({ to: 3 }))) console.log(result.n)
   */
  stream<TRequest extends RequestMessage & TypedResult<unknown, unknown, unknown>> (request: TRequest, options?: StreamOptions): MediatorStream<ResultOf<TRequest>>
  /**
   * Start a stream of a request declared without `result`: its items are
   * `unknown`, or the type given as the type argument (which nothing checks).
   * @example
   * for await (const result of mediator.stream<OrderProcessed>(command)) console.log(result.orderId)
   */
  stream<TResult = unknown> (request: RequestMessage & { readonly [resultType]?: ResultInfo<false> }, options?: StreamOptions): MediatorStream<TResult>
  stream (request: RequestMessage, options?: StreamOptions): MediatorStream<unknown> {
    const stream = new MediatorStream<unknown>(this.#core, request, options)
    if (this.#core.closed) stream.terminate(new ShutdownError())
    return stream
  }

  /**
   * Build every bound handler and event handler class once, each in a
   * throwaway scope, and throw `FST_ERR_CQRS_STREAM_MISSING_DEPENDENCY`
   * (naming the class and the missing registration) for the first that
   * cannot be built. The plugin calls it at `app.ready()` (unless
   * `verifyHandlers: false`); call it yourself after `bootstrapStreaming()`.
   * Constructors run, so keep them free of work that is not resolving
   * dependencies. `values` stand in for the per-stream values a real stream
   * registers (the plugin passes `fastifyRequest`).
   * @example
   * const mediator = bootstrapStreaming({ container, requests: (map) => map.bind(ImportCsv, ImportCsvHandler) })
   * await mediator.verifyHandlers()
   */
  verifyHandlers (values?: Readonly<Record<string, unknown>>): Promise<void> {
    return verifyHandlers(this.#core.container, this.requestMap, this.eventMap, values)
  }

  /** How many streams are running now. */
  get openStreams (): number { return this.#core.open.size }

  /**
   * End every open stream: their handlers are aborted, and this resolves when
   * they have cleaned up, or after `timeoutMs` (logging which did not).
   * Streams started afterwards fail at once with the same reason.
   */
  async close (options: MediatorCloseOptions = {}): Promise<void> {
    this.#core.closed = true
    const reason = options.reason ?? new ShutdownError()
    const timeoutMs = options.timeoutMs ?? 10_000
    const open = [...this.#core.open]
    if (open.length === 0) return
    const settled = Promise.all(open.map((stream) => stream.terminate(reason)))
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(resolve, timeoutMs, 'timeout') })
    const outcome = await Promise.race([settled, timedOut])
    clearTimeout(timer)
    if (outcome === 'timeout') {
      this.#core.logger.warn({ err: new CloseTimeoutError(this.#core.open.size, timeoutMs) }, 'fastify-cqrs-stream: close timed out')
    }
  }
}

/**
 * Builds a streaming mediator without Fastify: for workers, CLIs and tests.
 * @example
 * const mediator = bootstrapStreaming({
 *   requests: (map) => map.bind(ProcessOrdersCommand, ProcessOrdersHandler),
 * })
 */
export function bootstrapStreaming (options: StreamingMediatorOptions = {}): StreamingRequestMediator {
  return new StreamingRequestMediator(options)
}
