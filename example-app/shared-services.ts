import { AmqpMessageBroker } from '../src/amqp/index.js'
import type { MessageBroker, StreamStore } from '../src/index.js'
import { RedisStreamStore } from '../src/redis/index.js'

export interface SharedServices {
  readonly options: { broker?: MessageBroker, streamStore?: StreamStore }
  /** Closes what was opened; for the app's onClose. */
  close (): Promise<void>
}

/**
 * The services instances share, from the environment: `REDIS_URL` for a
 * RedisStreamStore, `AMQP_URL` (with `AMQP_EXCHANGE`, default
 * `orders.events`) for an AmqpMessageBroker. Unset: in-memory defaults.
 */
export async function sharedServices (env: NodeJS.ProcessEnv): Promise<SharedServices> {
  const streamStore = env.REDIS_URL === undefined ? undefined : new RedisStreamStore({ redis: env.REDIS_URL })
  let broker: AmqpMessageBroker | undefined
  try {
    broker = env.AMQP_URL === undefined
      ? undefined
      : await AmqpMessageBroker.connect({ url: env.AMQP_URL, exchange: env.AMQP_EXCHANGE ?? 'orders.events' })
  } catch (error) {
    await streamStore?.close()
    throw error
  }
  return {
    options: { broker, streamStore },
    async close () {
      await broker?.close()
      await streamStore?.close()
    },
  }
}
