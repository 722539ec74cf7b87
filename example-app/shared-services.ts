import pg from 'pg'
import { AmqpMessageBroker } from '../src/amqp/index.js'
import { InMemoryMessageBroker, type MessageBroker, type StreamStore } from '../src/index.js'
import { OutboxRelay, PostgresOutbox, type ItemTransactions } from '../src/postgres/index.js'
import { RedisStreamStore } from '../src/redis/index.js'
import { ORDERS_TABLE_SQL } from './order-log.js'

export interface SharedServices {
  readonly options: { broker?: MessageBroker, streamStore?: StreamStore, itemTransactions?: ItemTransactions }
  /** Closes what was opened; for the app's onClose. */
  close (): Promise<void>
}

/**
 * The services instances share, from the environment: `REDIS_URL` for a
 * RedisStreamStore, `AMQP_URL` (with `AMQP_EXCHANGE`, default
 * `orders.events`) for an AmqpMessageBroker, `DATABASE_URL` for the
 * PostgreSQL outbox: orders are written to `demo_orders` in each item's
 * transaction, their notifications to `cqrs_outbox`, and a relay per
 * instance publishes them to RabbitMQ (or keeps them in memory without
 * `AMQP_URL`). Unset: in-memory defaults.
 */
export async function sharedServices (env: NodeJS.ProcessEnv): Promise<SharedServices> {
  const closing: Array<() => Promise<void>> = []
  const close = async (): Promise<void> => {
    for (const step of closing.reverse()) await step()
  }
  try {
    const streamStore = env.REDIS_URL === undefined ? undefined : new RedisStreamStore({ redis: env.REDIS_URL })
    if (streamStore !== undefined) closing.push(() => streamStore.close())
    const amqp = env.AMQP_URL === undefined
      ? undefined
      : await AmqpMessageBroker.connect({ url: env.AMQP_URL, exchange: env.AMQP_EXCHANGE ?? 'orders.events' })
    if (amqp !== undefined) closing.push(() => amqp.close())
    if (env.DATABASE_URL === undefined) return { options: { broker: amqp, streamStore }, close }

    const pool = new pg.Pool({ connectionString: env.DATABASE_URL })
    pool.on('error', () => {})
    closing.push(() => pool.end())
    const outbox = new PostgresOutbox({ pool })
    await outbox.migrate()
    await pool.query(ORDERS_TABLE_SQL)
    const relay = new OutboxRelay({ outbox, broker: amqp ?? new InMemoryMessageBroker() })
    await relay.start()
    // Stopped before the broker and the pool close (closing runs in reverse).
    closing.push(() => relay.stop())
    return { options: { broker: outbox, streamStore, itemTransactions: outbox.itemTransactions() }, close }
  } catch (error) {
    await close()
    throw error
  }
}
