import type { AwilixContainer } from 'awilix'
import type { MessageBroker } from '../brokers/message-broker.js'
import { InvalidOptionError } from '../errors.js'
import type { EventHandlerFailure, MediatorLogger, OnEventHandlerError } from '../events/event-handler-error.js'
import type { EventMap } from '../maps/event-map.js'
import type { RequestMap } from '../maps/request-map.js'
import type { StreamMiddleware } from './stream-middleware.js'

/**
 * How a streaming mediator is built: by the plugin from its options, or by
 * `bootstrapStreaming()` without Fastify.
 */
export interface StreamingMediatorOptions {
  /**
   * The Awilix container handlers are built from; every stream gets its own
   * `createScope()`, disposed when the stream ends. A new container when
   * omitted (the plugin uses `app.diContainer` of @fastify/awilix if present).
   */
  container?: AwilixContainer
  /**
   * Binds request classes to streaming handlers.
   * @example
   * requests: (map) => map.bind(ProcessOrdersCommand, ProcessOrdersHandler)
   */
  requests?: (map: RequestMap) => void
  /**
   * Binds domain event classes to event handlers.
   * @example
   * events: (map) => map.bind(OrderProcessedEvent, OrderProcessedHandler)
   */
  events?: (map: EventMap) => void
  /**
   * Where notification events go.
   * @default new DevNullMessageBroker()
   */
  messageBroker?: MessageBroker
  /**
   * Size of the p-limit pool shared by all streams of the mediator
   * (concurrent mode only). A positive integer or `Infinity`.
   * @default 10
   */
  maxConcurrentEventHandlers?: number
  /**
   * `true`: a yield's events (and each round of follow-ups) run concurrently
   * under the pool. `false`: one handler after another.
   * @default true
   */
  concurrentEventHandling?: boolean
  /** Wrap every stream, first = outermost. @default [] */
  middlewares?: StreamMiddleware[]
  /**
   * `'isolate'`: a failing event handler is logged and reported, and the
   * stream goes on. `'fail-stream'`: the stream fails with
   * `FST_ERR_CQRS_STREAM_EVENT_HANDLER_FAILED` after the round settles.
   * @default 'isolate'
   */
  eventHandlerFailure?: EventHandlerFailure
  /** Called for each failing event handler or broker send. */
  onEventHandlerError?: OnEventHandlerError
  /** Where failures are logged. The plugin passes `app.log`. @default console */
  logger?: MediatorLogger
}

const failures: readonly EventHandlerFailure[] = ['isolate', 'fail-stream']

/** Throws `FST_ERR_CQRS_STREAM_INVALID_OPTION` naming the first bad option. */
export function validateMediatorOptions (options: StreamingMediatorOptions): void {
  const { container, requests, events, messageBroker, maxConcurrentEventHandlers: max } = options
  if (container !== undefined && (typeof container !== 'object' || container === null || typeof container.createScope !== 'function')) {
    throw new InvalidOptionError('container', 'must be an Awilix container (createContainer())')
  }
  if (requests !== undefined && typeof requests !== 'function') throw new InvalidOptionError('requests', 'must be a function (map) => map.bind(Request, Handler)')
  if (events !== undefined && typeof events !== 'function') throw new InvalidOptionError('events', 'must be a function (map) => map.bind(Event, Handler)')
  if (messageBroker !== undefined && (typeof messageBroker !== 'object' || messageBroker === null || typeof messageBroker.send !== 'function')) {
    throw new InvalidOptionError('messageBroker', 'must be an object with a send(message) method')
  }
  if (max !== undefined && !(max === Number.POSITIVE_INFINITY || (Number.isInteger(max) && max >= 1))) {
    throw new InvalidOptionError('maxConcurrentEventHandlers', `must be a positive integer or Infinity, got ${String(max)}`)
  }
  if (options.concurrentEventHandling !== undefined && typeof options.concurrentEventHandling !== 'boolean') {
    throw new InvalidOptionError('concurrentEventHandling', 'must be a boolean')
  }
  if (options.middlewares !== undefined && (!Array.isArray(options.middlewares) || !options.middlewares.every((m) => typeof m === 'function'))) {
    throw new InvalidOptionError('middlewares', 'must be an array of functions (request, next, context) => AsyncIterable')
  }
  if (options.eventHandlerFailure !== undefined && !failures.includes(options.eventHandlerFailure)) {
    throw new InvalidOptionError('eventHandlerFailure', `must be 'isolate' or 'fail-stream', got ${String(options.eventHandlerFailure)}`)
  }
  if (options.onEventHandlerError !== undefined && typeof options.onEventHandlerError !== 'function') {
    throw new InvalidOptionError('onEventHandlerError', 'must be a function (error, info) => void')
  }
  const logger = options.logger
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger.error !== 'function' || typeof logger.warn !== 'function')) {
    throw new InvalidOptionError('logger', 'must have error() and warn() methods')
  }
}
