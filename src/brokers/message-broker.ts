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
}

/**
 * Where notification events go. `send` resolves when the broker has taken
 * the message; a rejection is reported like a failing event handler.
 * @example
 * class LogBroker implements MessageBroker {
 *   async send (message: BrokerMessage) { console.log(message.topic, message.payload) }
 * }
 */
export interface MessageBroker {
  send (message: BrokerMessage): Promise<void>
}
