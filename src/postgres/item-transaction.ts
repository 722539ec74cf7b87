import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg'
import { ItemTransactionEndedError, ItemTransactionRolledBackError } from '../errors.js'

const ignore = (): void => {}

/**
 * A stream's database transaction, one per item: what the handler (and its
 * event handlers) write while producing item N, and the notification events
 * emitted for it, are committed together before item N reaches the client.
 * A throw or an abort rolls back the item in progress. The transaction
 * begins on the first query of each item; an item that queries nothing
 * costs nothing. Registered in the stream's scope by
 * {@link PostgresOutbox.itemTransactions}.
 * @example
 * class ShipOrdersHandler extends StreamingRequestHandler<ShipOrders, Shipped> {
 *   constructor (private readonly deps: { tx: ItemTransaction }) { super() }
 *   async * handle (command: ShipOrders) {
 *     for (const orderId of command.orderIds) {
 *       await this.deps.tx.query('UPDATE orders SET status = $2 WHERE id = $1', [orderId, 'shipped'])
 *       this.emit(new OrderShipped({ orderId }))
 *       yield new Shipped({ orderId })   // committed, with its event, before the client sees it
 *     }
 *   }
 * }
 */
export class ItemTransaction {
  readonly streamId: string
  readonly #pool: Pool
  #client: PoolClient | undefined
  // The open transaction's client, once BEGIN is under way; undefined between items.
  #begun: Promise<PoolClient> | undefined
  #ended = false

  /** @internal made by the item-transaction middleware. */
  constructor (pool: Pool, streamId: string) {
    this.#pool = pool
    this.streamId = streamId
  }

  /**
   * Runs `text` in the item's transaction (beginning it when this is the
   * item's first query).
   */
  async query<R extends QueryResultRow = QueryResultRow> (text: string, values?: unknown[]): Promise<QueryResult<R>> {
    const client = await this.client()
    return await client.query<R>(text, values)
  }

  /**
   * The connection, inside the item's transaction, for a query builder or
   * ORM that takes a client. Do not commit, roll back or release it: the
   * stream does.
   */
  client (): Promise<PoolClient> {
    if (this.#ended) return Promise.reject(new ItemTransactionEndedError(this.streamId))
    this.#begun ??= this.#begin()
    return this.#begun
  }

  async #begin (): Promise<PoolClient> {
    let client = this.#client
    if (client === undefined) {
      client = this.#client = await this.#pool.connect()
      // A connection lost between queries is reported as an event as well as by the next query.
      client.on('error', ignore)
    }
    await client.query('BEGIN')
    return client
  }

  /** @internal commits the item's work, if it did any. */
  async commit (): Promise<void> {
    const begun = this.#begun
    if (begun === undefined) return
    this.#begun = undefined
    const { command } = await (await begun).query('COMMIT')
    // A transaction in which a statement failed (and the error was caught) ends in a rollback, without an error.
    if (command === 'ROLLBACK') throw new ItemTransactionRolledBackError(this.streamId)
  }

  /** @internal rolls back the item in progress (if any) and gives the connection back; the transaction is unusable after. */
  async end (): Promise<void> {
    this.#ended = true
    const begun = this.#begun
    this.#begun = undefined
    let broken: Error | undefined
    if (begun !== undefined) {
      try {
        await (await begun).query('ROLLBACK')
      } catch (error) {
        broken = error as Error
      }
    }
    const client = this.#client
    this.#client = undefined
    if (client === undefined) return
    client.off('error', ignore)
    // A connection whose rollback failed is not given back to the pool.
    client.release(broken)
  }
}
