import type { Event } from '../messages/event.js'
import { EventCollector } from './event-collector.js'
import type { StreamContext } from './stream-context.js'

/**
 * Handles one domain event class. Built once per stream from the stream's
 * scope (so it may hold per-stream state) and called for every event of its
 * class in that stream, possibly concurrently. It may `emit()` follow-up
 * events; they are handled after the current round, breadth first.
 * @example
 * class OrderProcessedHandler extends EventHandler<OrderProcessedEvent> {
 *   constructor (private readonly deps: { analytics: Analytics }) { super() }
 *   async handle (event: OrderProcessedEvent, { signal }: StreamContext) {
 *     await this.deps.analytics.record(event.orderId, { signal })
 *   }
 * }
 */
export abstract class EventHandler<TEvent extends Event = Event> extends EventCollector {
  abstract handle (event: TEvent, context: StreamContext): Promise<void> | void
}

/** A class whose instances are event handlers; the container builds it. */
export type EventHandlerClass<TEvent extends Event = Event> =
  new (...args: never[]) => EventHandler<TEvent>
