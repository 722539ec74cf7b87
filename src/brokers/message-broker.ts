import type { StreamContext } from '../handlers/stream-context.js'

/**
 * A notification event as it leaves the process: python-cqrs's `Message`.
 * @example
 * { messageName: 'OrderShipped', messageId: '3f1c…', topic: 'orders.shipped', payload: { orderId: 'a' } }
 */
export interface BrokerMessage {
  /** The event's class name. */
  readonly messageName: string
  /** The event's `eventId`. */
  readonly messageId: string
  /** The event's topic. */
  readonly topic: string
  /** The event's own data (its schema fields). */
  readonly payload: Readonly<Record<string, unknown>>
  /**
   * Transport headers to send with it: the W3C trace context
   * (`traceparent`, `tracestate`) of its publish span while
   * `fastify-cqrs-stream/otel` is on. `AmqpMessageBroker` sends them as
   * AMQP headers, the PostgreSQL outbox keeps them in its row for the relay.
   */
  readonly headers?: Readonly<Record<string, string>>
}

/**
 * Where notification events go. `send` resolves when the broker has taken
 * the message; a rejection is reported like a failing event handler.
 * `context` is the stream whose handler (or event handler) emitted the
 * event: a broker may tie the message to that stream, as the PostgreSQL
 * outbox writes it in the stream's item transaction.
 * @example
 * class LogBroker implements MessageBroker {
 *   async send (message: BrokerMessage, context?: StreamContext) { console.log(context?.streamId, message.topic, message.payload) }
 * }
 */
export interface MessageBroker {
  send (message: BrokerMessage, context?: StreamContext): Promise<void>
  /** The messaging system, for traces (`messaging.system`, e.g. `rabbitmq`); undefined when it is not one. */
  readonly messagingSystem?: string
}
