import type { Static, TObject } from '@sinclair/typebox'
import { parseMessage, plainData, type MessageClass } from './message.js'

/** The instance side of every domain event: handled in-process by event handlers. */
export abstract class DomainEventMessage {
  // Type-only brand: no other kind of message (same toJSON shape) fits where a domain event is expected.
  declare private readonly fastifyCqrsStreamDomainEvent: true
  /** Plain data of the event. */
  toJSON (): Record<string, unknown> { return plainData(this) }
}

/** A domain event class made by {@link DomainEvent}; its instances are frozen. */
export interface DomainEventClass<S extends TObject = TObject, I extends DomainEventMessage = DomainEventMessage & Readonly<Static<S>>>
  extends MessageClass<S, I> {
  new (data: Static<S>): I
}

/**
 * Makes a domain event class from a TypeBox object schema. Instances are
 * frozen: event handlers running concurrently cannot change what the others
 * see. (A subclass therefore cannot declare instance fields of its own.)
 * @example
 * class OrderProcessedEvent extends DomainEvent(Type.Object({
 *   orderId: Type.String(), totalAmount: Type.Number(),
 * })) {}
 * handler.emit(new OrderProcessedEvent({ orderId: 'a', totalAmount: 10 }))
 */
export function DomainEvent<S extends TObject> (schema: S): DomainEventClass<S> {
  return class extends DomainEventMessage {
    static readonly schema = schema
    static readonly parse = parseMessage
    constructor (data: Static<S>) {
      super()
      Object.assign(this, data)
      Object.freeze(this)
    }
  } as unknown as DomainEventClass<S>
}
