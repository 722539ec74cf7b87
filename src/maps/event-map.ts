import { InvalidBindingError } from '../errors.js'
import { EventHandler, type EventHandlerClass } from '../handlers/event-handler.js'
import type { StreamContext } from '../handlers/stream-context.js'
import type { TObject } from '@sinclair/typebox'
import { DomainEventMessage } from '../messages/domain-event.js'
import type { MessageClass } from '../messages/message.js'

const none: readonly EventHandlerClass[] = Object.freeze([])

/**
 * Binds domain event classes to their event handlers, many per class. An
 * event reaches the handlers bound to its exact class.
 * @example
 * events: (map) => map
 *   .bind(OrderProcessedEvent, OrderProcessedHandler)
 *   .bind(OrderProcessedEvent, OrderAnalyticsHandler)
 */
export class EventMap {
  readonly #handlers = new Map<Function, EventHandlerClass[]>()

  /** Add `handler` to the handlers of `event`. Binding the same pair twice is a no-op. */
  bind<TEvent extends DomainEventMessage> (
    // Not `DomainEventClass`: its defaults accept no concrete class.
    event: MessageClass<TObject, TEvent> & (new (...args: never[]) => TEvent),
    // `handle` as a function type: checked contravariantly, unlike a method,
    // so a handler of an event with more fields is rejected.
    handler: EventHandlerClass<TEvent> & (new (...args: never[]) => { handle: (event: TEvent, context: StreamContext) => unknown })
  ): this {
    if (typeof event !== 'function' || !(event.prototype instanceof DomainEventMessage)) {
      throw new InvalidBindingError('EventMap.bind() takes a class made by DomainEvent() as its first argument')
    }
    if (typeof handler !== 'function' || !(handler.prototype instanceof EventHandler)) {
      throw new InvalidBindingError(`the handler bound to "${event.name}" must be a class extending EventHandler`)
    }
    let list = this.#handlers.get(event)
    if (list === undefined) {
      list = []
      this.#handlers.set(event, list)
    }
    if (!list.includes(handler as unknown as EventHandlerClass)) list.push(handler as unknown as EventHandlerClass)
    return this
  }

  /** The handlers bound to `event`'s exact class, in binding order. */
  get (event: Function): readonly EventHandlerClass[] {
    return this.#handlers.get(event) ?? none
  }

  /** Every binding, in the order they were made. */
  entries (): IterableIterator<[Function, readonly EventHandlerClass[]]> { return this.#handlers.entries() }
}
