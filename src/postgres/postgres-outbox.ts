import type { ClientBase, Pool } from 'pg'
import type { BrokerMessage, MessageBroker } from '../brokers/message-broker.js'
import { InvalidOptionError } from '../errors.js'
import { messageClassOf } from '../messages/message.js'
import type { StreamContext } from '../handlers/stream-context.js'
import { NotificationEventMessage } from '../messages/notification-event.js'
import type { ItemTransaction } from './item-transaction.js'
import { itemTransactions, type ItemTransactions } from './item-transactions.js'
import { messageOfRow, type OutboxMessageRow } from './outbox-row.js'
import { outboxSql, type OutboxSql } from './outbox-sql.js'
import { runMigration } from './run-migration.js'

export interface PostgresOutboxOptions {
  /** A node-postgres pool: `send()`, `migrate()`, `dead()`, `retry()` and the relays take their connections from it. */
  readonly pool: Pool
  /** The outbox table, optionally schema-qualified. Default `'cqrs_outbox'`. */
  readonly table?: string
}

/** A row that ran out of attempts: see {@link PostgresOutbox.dead}. */
export interface DeadOutboxRow {
  /** The row's id, for {@link PostgresOutbox.retry} (a bigint, as a string). */
  readonly id: string
  readonly message: BrokerMessage
  readonly attempts: number
  readonly createdAt: Date
  /** The last send's error message. */
  readonly lastError: string | null
}

// A pool, a client or an item transaction: what an INSERT can run on.
interface Queryable {
  query (text: string, values: unknown[]): Promise<unknown>
}

interface DeadRow extends OutboxMessageRow {
  id: string
  attempts: number
  created_at: Date
  last_error: string | null
}

/** A notification event as the broker gets it (the same shape the mediator sends). */
export function brokerMessageOf (event: NotificationEventMessage): BrokerMessage {
  return { messageName: messageClassOf(event).name, messageId: event.eventId, topic: event.topic, payload: event.payload }
}

/**
 * A transactional outbox on PostgreSQL: notification events are written to
 * a table in the same transaction as the change they announce, and an
 * {@link OutboxRelay} publishes them once committed. A rolled-back change
 * publishes nothing; a committed one is published at least once, with its
 * event id as the broker's `messageId` on every attempt.
 *
 * As the plugin's `messageBroker`, the events a handler emits are written
 * to the outbox (each in its own statement) instead of going to the broker
 * from memory: a crash after the item loses none of them.
 * @example
 * import pg from 'pg'
 * import { PostgresOutbox, OutboxRelay } from 'fastify-cqrs-stream/postgres'
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const outbox = new PostgresOutbox({ pool })
 * await outbox.migrate()
 * const client = await pool.connect()
 * try {
 *   await client.query('BEGIN')
 *   await client.query('UPDATE orders SET shipped = true WHERE id = $1', [orderId])
 *   await outbox.add(client, new OrderShipped({ orderId }))
 *   await client.query('COMMIT')
 * } catch (error) {
 *   await client.query('ROLLBACK')
 *   throw error
 * } finally {
 *   client.release()
 * }
 */
export class PostgresOutbox implements MessageBroker {
  readonly pool: Pool
  /** @internal the table's statements, shared with the relays. */
  readonly sql: OutboxSql
  // The item transactions of the streams running now, by stream id.
  readonly #open = new Map<string, ItemTransaction>()

  constructor (options: PostgresOutboxOptions) {
    if (typeof options !== 'object' || options === null || typeof options.pool?.connect !== 'function') {
      throw new InvalidOptionError('pool', 'must be a pg Pool (new pg.Pool({ connectionString }))')
    }
    this.pool = options.pool
    this.sql = outboxSql(options.table ?? 'cqrs_outbox')
  }

  /** The table's name, as given. */
  get table (): string { return this.sql.table }

  /**
   * Creates the table, its indexes and its NOTIFY trigger, if missing.
   * Idempotent, and safe from several instances at once. Teams that run
   * their own migrations apply `sql/outbox.sql` (the default table) instead.
   */
  async migrate (): Promise<void> {
    await runMigration(this.pool, this.sql.migrate)
  }

  /**
   * Writes `events` to the outbox with `client`, inside the caller's
   * transaction: rolled back with it, published once it commits. An event
   * already in the outbox (same `eventId`) is kept once.
   * @example
   * await outbox.add(client, [new OrderShipped({ orderId }), new InvoiceSent({ orderId })])
   */
  async add (client: ClientBase, events: NotificationEventMessage | readonly NotificationEventMessage[]): Promise<void> {
    await this.#insert(client, (Array.isArray(events) ? events : [events]).map(toMessage))
  }

  /**
   * As a `MessageBroker`: writes the message to the outbox, in the item
   * transaction of the stream that emitted it when it has one (see
   * {@link itemTransactions}), else in a statement of its own. The relay
   * publishes it once committed.
   */
  async send (message: BrokerMessage, context?: StreamContext): Promise<void> {
    const transaction = context === undefined ? undefined : this.#open.get(context.streamId)
    await this.#insert(transaction ?? this.pool, [message])
  }

  /**
   * Items as commit points: each stream gets an {@link ItemTransaction}
   * (resolved from its scope by `resolver`), and the `middleware` commits it
   * at every item, after the item's events were handled and written here,
   * before the item is sent to the client (or kept for a reconnect). A
   * throw or an abort rolls back the item in progress with its events.
   * Use the outbox as the `messageBroker` so that events join the item.
   * @example
   * const items = outbox.itemTransactions()
   * container.register({ tx: items.resolver })
   * await app.register(fastifyCqrsStream, { container, requests, messageBroker: outbox, middlewares: [items.middleware] })
   */
  itemTransactions (): ItemTransactions {
    return itemTransactions(this.pool, this.#open)
  }

  async #insert (client: Queryable, messages: readonly BrokerMessage[]): Promise<void> {
    if (messages.length === 0) return
    await client.query(this.sql.insert, [
      messages.map((m) => m.messageId),
      messages.map((m) => m.topic),
      messages.map((m) => m.messageName),
      messages.map((m) => JSON.stringify(m.payload)),
      messages.map((m) => m.headers === undefined ? null : JSON.stringify(m.headers)),
    ])
  }

  /** Rows that ran out of attempts, oldest first: they stay until retried or deleted by hand. */
  async dead (limit = 100): Promise<DeadOutboxRow[]> {
    const { rows } = await this.pool.query<DeadRow>(this.sql.dead, [limit])
    return rows.map((row) => ({
      id: row.id,
      message: messageOfRow(row),
      attempts: row.attempts,
      createdAt: row.created_at,
      lastError: row.last_error,
    }))
  }

  /**
   * Makes dead row `id` pending again, with its attempts reset, and wakes
   * the relays. False when there is no dead row of that id.
   */
  async retry (id: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(this.sql.retry, [id])
    if (rowCount === 0) return false
    await this.pool.query(this.sql.notify)
    return true
  }
}

function toMessage (event: NotificationEventMessage): BrokerMessage {
  if (!(event instanceof NotificationEventMessage)) {
    throw new InvalidOptionError('events', 'must be notification events (classes made with NotificationEvent(topic, schema))')
  }
  return brokerMessageOf(event)
}
