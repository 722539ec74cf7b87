import { fastifyCqrsStream } from './plugin/plugin.js'

export { fastifyCqrsStream }
export default fastifyCqrsStream

export type { FastifyCqrsStreamOptions, EventStreamSettings } from './plugin/plugin-options.js'
export type { EventStreamOptions } from './plugin/event-stream-reply.js'
export type { StreamStats } from './plugin/open-streams.js'
export type { StreamLimits } from './plugin/stream-limits.js'
export type { StreamOwner } from './plugin/stream-owner.js'
export type {
  StreamRouteOptions, TwoStepSettings, StreamRequestClass, StreamResponseClass, ResponseOptionOf,
} from './plugin/stream-route-options.js'

export {
  Request, RequestMessage, type RequestClass, type RequestOptions, type TypedRequestClass, type UntypedRequestClass,
  type ResultClass, type ResultSpec, type ResultOf, type ResultValueOf, type ResultJsonOf,
} from './messages/request.js'
export type { ResultInfo, TypedResult, UntypedResult } from './messages/result-type.js'
export type { DataOf, ResultDataOf } from './client/command-types.js'
export { Response, ResponseMessage, type ResponseClass } from './messages/response.js'
export { DomainEvent, DomainEventMessage, type DomainEventClass } from './messages/domain-event.js'
export {
  NotificationEvent, NotificationEventMessage, type NotificationEventClass, type NotificationMeta,
} from './messages/notification-event.js'
export type { Event } from './messages/event.js'
export type { MessageClass, MessageData } from './messages/message.js'

export { StreamingRequestHandler, type StreamingRequestHandlerClass } from './handlers/streaming-request-handler.js'
export { EventHandler, type EventHandlerClass } from './handlers/event-handler.js'
export type { StreamContext } from './handlers/stream-context.js'

export { RequestMap } from './maps/request-map.js'
export { EventMap } from './maps/event-map.js'

export {
  StreamingRequestMediator, bootstrapStreaming, type MediatorCloseOptions,
} from './mediator/streaming-request-mediator.js'
export type { StreamingMediatorOptions } from './mediator/mediator-options.js'
export type { MediatorStream, StreamOptions } from './mediator/mediator-stream.js'
export { VERIFY_STREAM_ID } from './mediator/verify-handlers.js'
export type { StreamMiddleware } from './mediator/stream-middleware.js'
export type {
  EventHandlerErrorInfo, OnEventHandlerError, EventHandlerFailure, MediatorLogger,
} from './events/event-handler-error.js'

export { Saga, SagaHandler, type SagaClass } from './sagas/saga.js'
export { SagaStep, type SagaStepClass, type SagaStepRun } from './sagas/saga-step.js'
export { SagaProgressSchema, type SagaProgress } from './sagas/saga-progress.js'
export { InMemorySagaStorage } from './sagas/in-memory-saga-storage.js'
export { SagaRecovery, type RecoverableSagaClass, type RecoverableSagaStorage, type SagaRecoveryOptions } from './sagas/saga-recovery.js'
export type { SagaExecution, SagaLogEntry, SagaStatus, SagaStorage } from './sagas/saga-execution.js'
export type { CompensationPolicy } from './sagas/compensation-policy.js'
export type { HandlerScope } from './handlers/handler-scope.js'
export type { BrokerMessage, MessageBroker } from './brokers/message-broker.js'
export { DevNullMessageBroker } from './brokers/devnull-message-broker.js'
export { InMemoryMessageBroker } from './brokers/in-memory-message-broker.js'

export type { EventStreamSource, SourceContext } from './sse/stream-run.js'
export type { ResumeSettings } from './resume/resume-settings.js'
export type { FollowOptions, SharedStreamStore, StoredCommand, StreamSignal, StreamStore, StoredFrame, StoredStream, StreamLogOptions, TakenCommand } from './resume/stream-store.js'
export { isSharedStore } from './resume/stream-store.js'
export { InMemoryStreamStore } from './resume/in-memory-stream-store.js'
export type { Serializer } from './sse/frame-encoder.js'
export type { PublicError } from './sse/public-error.js'

export {
  channelNames, type StreamStartMessage, type StreamEndMessage, type EventHandlerErrorMessage, type StreamRefusedMessage,
  type RunOutcome, type RunStartMessage, type RunEventMessage, type RunEndMessage, type EventHandlerCallMessage, type PublishMessage,
  type FollowMessage, type FollowOutcome, type TwoStepPendingMessage,
} from './diagnostics.js'

export * as errors from './errors.js'
