import { publishEndChannel, publishStartChannel, type PublishMessage } from '../diagnostics.js'
import type { StreamContext } from '../handlers/stream-context.js'
import type { BrokerMessage, MessageBroker } from './message-broker.js'

/**
 * `broker.send()` reported on the `publish:*` channels, for the mediator's
 * sends and an outbox relay's alike. A tracer writes its publish span's
 * context into the message's headers at the start; without a subscriber
 * the message goes as it is, at no cost.
 */
export async function tracedSend (broker: MessageBroker, message: BrokerMessage, streamId: string | undefined, context?: StreamContext): Promise<void> {
  if (!publishStartChannel.hasSubscribers && !publishEndChannel.hasSubscribers) return broker.send(message, context)
  const publish: PublishMessage = {
    streamId,
    messageName: message.messageName,
    messageId: message.messageId,
    topic: message.topic,
    system: broker.messagingSystem,
    headers: { ...message.headers },
  }
  publishStartChannel.publish(publish)
  try {
    await broker.send(Object.keys(publish.headers).length === 0 ? message : { ...message, headers: publish.headers }, context)
  } catch (error) {
    publish.error = error
    publishEndChannel.publish(publish)
    throw error
  }
  publishEndChannel.publish(publish)
}
