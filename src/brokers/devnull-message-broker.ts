import type { BrokerMessage, MessageBroker } from './message-broker.js'

/** The default broker: accepts every message and drops it. */
export class DevNullMessageBroker implements MessageBroker {
  async send (_message: BrokerMessage): Promise<void> {}
}
