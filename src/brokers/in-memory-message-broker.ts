import type { BrokerMessage, MessageBroker } from './message-broker.js'

/**
 * Keeps every message it is sent, in order: for tests and demos.
 * @example
 * const broker = new InMemoryMessageBroker()
 * // … run a stream …
 * broker.messages.filter((m) => m.topic === 'orders.shipped')
 */
export class InMemoryMessageBroker implements MessageBroker {
  readonly messages: BrokerMessage[] = []

  async send (message: BrokerMessage): Promise<void> {
    this.messages.push(message)
  }

  /** Forget every message. */
  clear (): void { this.messages.length = 0 }
}
