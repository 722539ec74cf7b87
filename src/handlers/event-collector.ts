import { InvalidBindingError } from '../errors.js'
import { isEvent, type Event } from '../messages/event.js'

/**
 * Collects the events a handler emits until the mediator takes them. Shared
 * by streaming handlers and event handlers.
 */
export abstract class EventCollector {
  // Made by the first emit(): most handlers emit nothing.
  #events: Event[] | undefined

  /**
   * Queue an event. A streaming handler's events are handled before the item
   * it yields next reaches the client; an event handler's are handled as
   * follow-ups after the current round.
   * @example
   * this.emit(new OrderProcessedEvent({ orderId, totalAmount }))
   */
  emit (event: Event): void {
    if (!isEvent(event)) throw new InvalidBindingError('emit() takes an instance of a DomainEvent() or NotificationEvent() class')
    this.#events ??= []
    this.#events.push(event)
  }

  /** A copy of the events emitted and not yet taken. */
  get events (): readonly Event[] { return this.#events?.slice() ?? [] }

  /** Drop every pending event. */
  clearEvents (): void { this.#events = undefined }

  /** @internal the pending events, emptied in one step (no copy). */
  takeEvents (): Event[] | undefined {
    const events = this.#events
    this.#events = undefined
    return events
  }
}
