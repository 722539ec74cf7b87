import createError from '@fastify/error'

/** The optional last argument of an error that wraps another. */
type Cause = { cause: unknown }

// Every error this package throws is created here, each with a stable code
// that tests and users can match on. Messages name the package, the value
// and the fix.

/** A plugin or mediator option is invalid; the app refuses to boot. */
export const InvalidOptionError = createError<[string, string]>(
  'FST_ERR_CQRS_STREAM_INVALID_OPTION',
  'fastify-cqrs-stream: option "%s" %s.',
  500,
  TypeError
)

/** `bind()` was given something that is not a message class or handler class. */
export const InvalidBindingError = createError<[string]>(
  'FST_ERR_CQRS_STREAM_INVALID_BINDING',
  'fastify-cqrs-stream: %s.',
  500,
  TypeError
)

/** A message schema declares a field the message class itself defines. */
export const ReservedFieldError = createError<[string, string]>(
  'FST_ERR_CQRS_STREAM_RESERVED_FIELD',
  'fastify-cqrs-stream: the schema of %s declares "%s", which the class sets itself. Rename the field.',
  500,
  TypeError
)

/** A request class was bound to a second streaming handler. */
export const DuplicateHandlerError = createError<[string, string, string]>(
  'FST_ERR_CQRS_STREAM_DUPLICATE_HANDLER',
  'fastify-cqrs-stream: request "%s" is already bound to "%s"; cannot bind "%s" too. Bind each request class once.',
  500
)

/** No streaming handler is bound to the request's class. */
export const NoHandlerError = createError<[string, string]>(
  'FST_ERR_CQRS_STREAM_NO_HANDLER',
  'fastify-cqrs-stream: no streaming handler is bound to request "%s". Bind one with requests: (map) => map.bind(%s, YourHandler).',
  500
)

/** A handler class needs a registration the container does not have (found when the app boots). */
export const MissingDependencyError = createError<[string, string, string, string, Cause?]>(
  'FST_ERR_CQRS_STREAM_MISSING_DEPENDENCY',
  'fastify-cqrs-stream: %s (%s) needs "%s", which the container does not register (resolution path: %s). ' +
    'Register it in the Awilix container before app.ready(), or set verifyHandlers: false to skip this check.',
  500
)

/** `X.parse(value)` found a value that does not match the message schema. */
export const InvalidMessageError = createError<[string, string]>(
  'FST_ERR_CQRS_STREAM_INVALID_MESSAGE',
  'fastify-cqrs-stream: invalid "%s": %s.',
  400
)

/** `app.streamRoute()` was called with options it cannot serve. */
export const InvalidRouteError = createError<[string]>(
  'FST_ERR_CQRS_STREAM_INVALID_ROUTE',
  'fastify-cqrs-stream: streamRoute %s.',
  500,
  TypeError
)

/** `reply.eventStream()` was given something that is not an async iterable. */
export const InvalidSourceError = createError(
  'FST_ERR_CQRS_STREAM_INVALID_SOURCE',
  'fastify-cqrs-stream: reply.eventStream() needs an AsyncIterable or a function (signal) => AsyncIterable.',
  500,
  TypeError
)

/** A mediator stream was iterated a second time. */
export const StreamAlreadyConsumedError = createError(
  'FST_ERR_CQRS_STREAM_ALREADY_CONSUMED',
  'fastify-cqrs-stream: a mediator stream can be iterated once. Call mediator.stream() again for a new run.',
  500
)

/** The stream was aborted (client left, `signal` aborted, or shutdown). */
export const StreamAbortedError = createError<[Cause?]>(
  'FST_ERR_CQRS_STREAM_ABORTED',
  'fastify-cqrs-stream: the stream was aborted before it finished.',
  499
)

/** A resumable stream was cancelled through its `DELETE` URL. */
export const StreamCancelledError = createError(
  'FST_ERR_CQRS_STREAM_CANCELLED',
  'fastify-cqrs-stream: the stream was cancelled by its client.',
  499
)

/**
 * The instance that ran a stream stopped (killed, or cut off from Redis
 * longer than `ownerTimeoutMs`) while a client followed it from another
 * instance: the `error` frame that ends the stream there. No HTTP status:
 * it is only ever a frame. The command is not run again.
 */
export const OwnerLostError = createError(
  'FST_ERR_CQRS_STREAM_OWNER_LOST',
  'fastify-cqrs-stream: the server that ran this stream stopped before it finished. It was not run again: check its outcome, then send the command again if needed.',
  // 0: @fastify/error then sets no statusCode.
  0
)

/** A two-step or resumable stream id that is unknown here: never created, never claimed in time, or expired. */
export const StreamNotFoundError = createError<[string]>(
  'FST_ERR_CQRS_STREAM_NOT_FOUND',
  'fastify-cqrs-stream: no stream "%s" here. It was never created, was not claimed in time, or has expired: send the command again.',
  404
)

/** This instance runs `limits.maxOpenStreams` streams (or `maxPendingStreams` two-step commands): answered 503 with `Retry-After`. */
export const OverloadedError = createError<[string]>(
  'FST_ERR_CQRS_STREAM_OVERLOADED',
  'fastify-cqrs-stream: this server runs as many %s as it takes. Retry after the Retry-After delay, or on another instance.',
  503
)

/** The stream's owner runs `limits.maxStreamsPerOwner` streams already: answered 429 with `Retry-After`. */
export const TooManyStreamsError = createError<[number]>(
  'FST_ERR_CQRS_STREAM_TOO_MANY_STREAMS',
  'fastify-cqrs-stream: you have %s streams open already. Close one (or wait for one to end) and retry.',
  429
)

/** The server is closing; open streams end with this error frame. */
export const ShutdownError = createError(
  'FST_ERR_CQRS_STREAM_SHUTDOWN',
  'fastify-cqrs-stream: the server is shutting down. Retry the command against another instance.',
  503
)

/** A handler threw an error that is not safe to show to clients. */
export const HandlerFailedError = createError(
  'FST_ERR_CQRS_STREAM_HANDLER_FAILED',
  'fastify-cqrs-stream: the command failed. The server log has the details.',
  500
)

/** An event handler failed while the app chose `eventHandlerFailure: 'fail-stream'`. */
export const EventHandlerFailedError = createError<[string, string, Cause?]>(
  'FST_ERR_CQRS_STREAM_EVENT_HANDLER_FAILED',
  'fastify-cqrs-stream: event handler "%s" failed on event "%s".',
  500
)

/**
 * A streamed item could not be serialised to JSON. The message (for the log)
 * says why; the client's error frame gets a generic one.
 */
export const SerializationError = createError<[string, Cause?]>(
  'FST_ERR_CQRS_STREAM_SERIALIZATION',
  // No closing period: pino appends ": <the cause's message>".
  'fastify-cqrs-stream: %s',
  500
)

/** Open streams did not finish within `closeTimeoutMs` during `app.close()`. */
export const CloseTimeoutError = createError<[number, number]>(
  'FST_ERR_CQRS_STREAM_CLOSE_TIMEOUT',
  'fastify-cqrs-stream: %s stream(s) did not finish within closeTimeoutMs (%s ms); their handlers ignore the abort signal.',
  500
)

/** The AMQP broker cannot be reached (at boot, or during an outage longer than the send timeout), or was closed. */
export const BrokerUnavailableError = createError<[string, string, Cause?]>(
  'FST_ERR_CQRS_STREAM_BROKER_UNAVAILABLE',
  'fastify-cqrs-stream: the message broker at %s cannot take messages: %s.',
  503
)

/** The AMQP broker refused a message (a nack), or the message cannot be published (e.g. a topic over 255 bytes). */
export const BrokerRejectedError = createError<[string, string, Cause?]>(
  'FST_ERR_CQRS_STREAM_BROKER_REJECTED',
  'fastify-cqrs-stream: message %s was not delivered: %s. The event handler failure policy decides what happens to the stream.',
  502
)

/** A shared stream store (Redis) cannot be used right now: resume is off until it is back. */
export const StreamStoreUnavailableError = createError<[string, Cause?]>(
  'FST_ERR_CQRS_STREAM_STORE_UNAVAILABLE',
  'fastify-cqrs-stream: the stream store is unavailable (%s). Streams go on without resume until it is back; check the Redis connection.',
  503
)

/** A stream's item transaction (fastify-cqrs-stream/postgres) was used after its stream ended. */
export const ItemTransactionEndedError = createError<[string]>(
  'FST_ERR_CQRS_STREAM_TRANSACTION_ENDED',
  'fastify-cqrs-stream: the item transaction of stream %s has ended. Use it only from the stream\'s handler and event handlers, while the stream runs.',
  500
)

/** A handler asked for the stream's item transaction, but the stream runs without the item-transaction middleware. */
export const ItemTransactionMissingError = createError<[string]>(
  'FST_ERR_CQRS_STREAM_NO_TRANSACTION',
  'fastify-cqrs-stream: stream %s has no item transaction. Add outbox.itemTransactions().middleware to the plugin\'s middlewares, with its resolver in the container.',
  500
)

/** PostgreSQL answered an item's COMMIT with a rollback: a statement of the item failed (and was caught). */
export const ItemTransactionRolledBackError = createError<[string]>(
  'FST_ERR_CQRS_STREAM_TRANSACTION_FAILED',
  'fastify-cqrs-stream: the item transaction of stream %s was rolled back by PostgreSQL, because a statement in it failed. The item was not sent; a failed query must end the item (rethrow it), or be retried in a savepoint.',
  500
)

/** A saga step failed; the steps completed before it were compensated, in reverse order. */
export const SagaCompensatedError = createError<[string, string, number, Cause?]>(
  'FST_ERR_CQRS_STREAM_SAGA_COMPENSATED',
  'fastify-cqrs-stream: saga %s stopped at step %s, which failed; the %d steps completed before it were undone. Nothing of the saga remains applied; the command may be retried.',
  409
)

/** A compensation kept failing after its retries: the saga is stored as failed-compensation. */
export const SagaCompensationFailedError = createError<[string, string, Cause?]>(
  'FST_ERR_CQRS_STREAM_SAGA_COMPENSATION_FAILED',
  'fastify-cqrs-stream: saga %s could not undo step %s after its retries; it is stored as failed-compensation and needs an operator (see docs/sagas.md).',
  500
)

/** Another process saved the saga's state since it was read: this run must not go on. */
export const SagaConflictError = createError<[string, number]>(
  'FST_ERR_CQRS_STREAM_SAGA_CONFLICT',
  'fastify-cqrs-stream: saga %s was saved by another run (expected version %d); this run stops so that no step runs twice.',
  409
)

/** A saga's `begin()` returned a context its schema refuses. */
export const InvalidSagaContextError = createError<[string, string]>(
  'FST_ERR_CQRS_STREAM_INVALID_SAGA_CONTEXT',
  'fastify-cqrs-stream: the context saga %s began with does not match its schema: %s. Return what Saga(schema) declares from begin().',
  500
)
