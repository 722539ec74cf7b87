import { Type } from '@sinclair/typebox'
import { DomainEvent, NotificationEvent, Request, Response } from '../src/index.js'

// The orders scenario of python-cqrs's "Stream Handling → FastAPI
// Integration" page, as TypeBox-backed message classes. One definition
// gives the binding key, the route validation, the static types (from the
// handler to the browser) and the `progress` frame serialiser.

/** One streamed result: becomes the `data` of a `progress` frame. */
export class OrderProcessedResult extends Response(Type.Object({
  orderId: Type.String(),
  status: Type.String(),
  processedAt: Type.String({ format: 'date-time' }),
  itemsCount: Type.Integer(),
})) {}

/**
 * The command: process these orders, streaming one `OrderProcessedResult`
 * per order. Naming the result here types the handler, `mediator.stream()`,
 * the route's frames and the client (`streamCommand<typeof ProcessOrdersCommand>`).
 */
export class ProcessOrdersCommand extends Request(Type.Object({
  orderIds: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 100 }),
}), { result: OrderProcessedResult }) {}

/** Domain event: an order was processed (handled in-process). */
export class OrderProcessedEvent extends DomainEvent(Type.Object({
  orderId: Type.String(),
  customerId: Type.String(),
  totalAmount: Type.Number(),
})) {}

/** Domain event: analytics about a processed order (handled in-process). */
export class OrderAnalyticsEvent extends DomainEvent(Type.Object({
  orderId: Type.String(),
  category: Type.String(),
})) {}

/** Notification event: sent to the message broker on topic `orders.shipped`. */
export class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({
  orderId: Type.String(),
})) {}
