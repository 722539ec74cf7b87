import type { Event } from '../messages/event.js'

/** What went wrong where, given to `onEventHandlerError` and the log. */
export interface EventHandlerErrorInfo {
  /** The event being handled. */
  readonly event: Event
  /** The event's class name. */
  readonly eventName: string
  /** The event handler's class name, or `'messageBroker'` for a failed send. */
  readonly handlerName: string
  /** The stream the event came from. */
  readonly streamId: string
}

/**
 * Called for every failing event handler or broker send, after it was logged.
 * Errors thrown by the hook itself are logged and otherwise ignored.
 * @example
 * onEventHandlerError: (error, { handlerName }) => metrics.increment('event_handler_failed', { handlerName })
 */
export type OnEventHandlerError = (error: unknown, info: EventHandlerErrorInfo) => void | Promise<void>

/** What a failing event handler does to its stream. */
export type EventHandlerFailure = 'isolate' | 'fail-stream'

/** The minimal logger the mediator writes to; Fastify's (pino) fits. */
export interface MediatorLogger {
  error (object: object, message: string): void
  warn (object: object, message: string): void
}
