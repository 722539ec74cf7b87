import { randomUUID } from 'node:crypto'
import type { Static, TObject } from '@sinclair/typebox'
import { ReservedFieldError } from '../errors.js'
import { parseMessage, type MessageClass } from './message.js'

/** Metadata every notification event carries besides its payload. */
export interface NotificationMeta {
  /** The broker topic (routing key) of the event's class. */
  readonly topic: string
  /** A unique id; brokers use it as the message id for de-duplication. */
  readonly eventId: string
  /** When the event was created, as an ISO 8601 string. */
  readonly occurredAt: string
}

const kPayload = Symbol('fastify-cqrs-stream.payload')
const RESERVED = ['topic', 'eventId', 'occurredAt', 'payload'] as const

/** The instance side of every notification event: sent to the message broker. */
export abstract class NotificationEventMessage implements NotificationMeta {
  // Type-only brand: no other kind of message (same toJSON shape) fits where a notification event is expected.
  declare private readonly fastifyCqrsStreamNotificationEvent: true
  declare readonly topic: string
  declare readonly eventId: string
  declare readonly occurredAt: string
  /** @internal the schema fields alone, kept for the broker message. */
  declare readonly [kPayload]: Record<string, unknown>

  /** The event's own data, without the metadata: what the broker message carries. */
  get payload (): Readonly<Record<string, unknown>> { return this[kPayload] }

  /** Plain data: metadata and payload fields. */
  toJSON (): Record<string, unknown> {
    return { topic: this.topic, eventId: this.eventId, occurredAt: this.occurredAt, ...this[kPayload] }
  }
}

/** A notification event class made by {@link NotificationEvent}. */
export interface NotificationEventClass<
  S extends TObject = TObject,
  I extends NotificationEventMessage = NotificationEventMessage & Readonly<Static<S>>
> extends MessageClass<S, I> {
  new (data: Static<S>, meta?: Partial<Omit<NotificationMeta, 'topic'>>): I
  /** The broker topic of every event of this class. */
  readonly topic: string
}

/**
 * Makes a notification event class: events for other services, sent to the
 * message broker as `{ messageName, messageId, topic, payload }`. Instances
 * are frozen and get `topic`, `eventId` and `occurredAt`.
 * @example
 * class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({ orderId: Type.String() })) {}
 * handler.emit(new OrderShipped({ orderId: 'a' }))
 */
export function NotificationEvent<S extends TObject> (topic: string, schema: S): NotificationEventClass<S> {
  for (const field of RESERVED) {
    if (Object.hasOwn(schema.properties, field)) throw new ReservedFieldError(`NotificationEvent('${topic}')`, field)
  }
  return class extends NotificationEventMessage {
    static readonly schema = schema
    static readonly topic = topic
    static readonly parse = parseMessage
    constructor (data: Static<S>, meta?: Partial<Omit<NotificationMeta, 'topic'>>) {
      super()
      Object.assign(this, data)
      Object.defineProperty(this, kPayload, { value: Object.freeze({ ...data }) })
      Object.defineProperty(this, 'topic', { value: topic, enumerable: true })
      Object.defineProperty(this, 'eventId', { value: meta?.eventId ?? randomUUID(), enumerable: true })
      Object.defineProperty(this, 'occurredAt', { value: meta?.occurredAt ?? new Date().toISOString(), enumerable: true })
      Object.freeze(this)
    }
  } as unknown as NotificationEventClass<S>
}
