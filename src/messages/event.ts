import { DomainEventMessage } from './domain-event.js'
import { NotificationEventMessage } from './notification-event.js'

/** Anything a handler may emit: a domain event or a notification event. */
export type Event = DomainEventMessage | NotificationEventMessage

/** True for instances of classes made by `DomainEvent()` or `NotificationEvent()`. */
export function isEvent (value: unknown): value is Event {
  return value instanceof DomainEventMessage || value instanceof NotificationEventMessage
}
