import type { ItemTransaction } from '../src/postgres/index.js'
import type { ProcessedOrder } from './services.js'

/** Where processed orders are recorded: in memory (`npm start`), or in PostgreSQL in the item's transaction (the cluster demo). */
export interface OrderLog {
  record (order: ProcessedOrder, streamId: string): Promise<void>
}

/** `npm start`: kept in memory. */
export class MemoryOrderLog implements OrderLog {
  readonly recorded: Array<ProcessedOrder & { streamId: string }> = []

  async record (order: ProcessedOrder, streamId: string): Promise<void> {
    this.recorded.push({ ...order, streamId })
  }
}

/** The demo's orders table, created at startup. */
export const ORDERS_TABLE_SQL = `CREATE TABLE IF NOT EXISTS demo_orders (
  order_id text NOT NULL,
  stream_id text NOT NULL,
  customer_id text NOT NULL,
  total numeric NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, order_id)
)`

/**
 * The cluster demo: one row per order, written in the stream's item
 * transaction, so the row and the order's OrderShipped notification are
 * committed together before the order's progress frame is sent.
 */
export class PostgresOrderLog implements OrderLog {
  readonly #tx: ItemTransaction

  constructor ({ tx }: { tx: ItemTransaction }) {
    this.#tx = tx
  }

  async record (order: ProcessedOrder, streamId: string): Promise<void> {
    await this.#tx.query('INSERT INTO demo_orders (order_id, stream_id, customer_id, total) VALUES ($1, $2, $3, $4)',
      [order.orderId, streamId, order.customerId, order.total])
  }
}
