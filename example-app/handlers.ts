import type { FastifyBaseLogger } from 'fastify'
import { EventHandler, StreamingRequestHandler, type StreamContext } from '../src/index.js'
import {
  OrderAnalyticsEvent, OrderProcessedEvent, OrderProcessedResult, OrderShipped, type ProcessOrdersCommand,
} from './messages.js'
import type { OrderLog } from './order-log.js'
import type { AnalyticsService, OrderService } from './services.js'

/**
 * The streaming handler: processes the orders one by one and yields a result
 * for each. Built per stream from the stream's Awilix scope, so `orders`
 * (a singleton) comes from the container. The events it emits while
 * producing an order are handled before that order's `progress` frame is
 * sent.
 */
export class ProcessOrdersHandler extends StreamingRequestHandler<ProcessOrdersCommand> {
  readonly #orders: OrderService
  readonly #orderLog: OrderLog

  constructor ({ orders, orderLog }: { orders: OrderService, orderLog: OrderLog }) {
    super()
    this.#orders = orders
    this.#orderLog = orderLog
  }

  async * handle (command: ProcessOrdersCommand, { signal, streamId }: StreamContext): AsyncGenerator<OrderProcessedResult> {
    for (const orderId of command.orderIds) {
      const order = await this.#orders.process(orderId, { signal })
      // In the cluster demo, a row in PostgreSQL, committed with this order's events before its frame.
      await this.#orderLog.record(order, streamId)
      this.emit(new OrderProcessedEvent({ orderId, customerId: order.customerId, totalAmount: order.total }))
      this.emit(new OrderAnalyticsEvent({ orderId, category: order.category }))
      yield new OrderProcessedResult({
        orderId,
        status: 'processed',
        processedAt: new Date().toISOString(),
        itemsCount: order.items,
      })
    }
  }
}

/**
 * Logs each processed order and announces it to other services: the
 * `OrderShipped` follow-up goes to the message broker in the next round,
 * still before the order's `progress` frame. `streamId` is registered in
 * every stream's scope by the mediator.
 */
export class OrderProcessedHandler extends EventHandler<OrderProcessedEvent> {
  readonly #logger: FastifyBaseLogger
  readonly #streamId: string

  constructor ({ logger, streamId }: { logger: FastifyBaseLogger, streamId: string }) {
    super()
    this.#logger = logger
    this.#streamId = streamId
  }

  handle (event: OrderProcessedEvent): void {
    this.#logger.info({ streamId: this.#streamId, orderId: event.orderId, customerId: event.customerId, totalAmount: event.totalAmount },
      'order processed')
    this.emit(new OrderShipped({ orderId: event.orderId }))
  }
}

/** Records each order's category in the in-memory analytics service. */
export class OrderAnalyticsHandler extends EventHandler<OrderAnalyticsEvent> {
  readonly #analytics: AnalyticsService

  constructor ({ analytics }: { analytics: AnalyticsService }) {
    super()
    this.#analytics = analytics
  }

  handle (event: OrderAnalyticsEvent): void {
    this.#analytics.record(event.orderId, event.category)
  }
}
