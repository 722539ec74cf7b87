import type { Resolver } from 'awilix'
import type { Pool } from 'pg'
import { ItemTransactionMissingError } from '../errors.js'
import type { StreamMiddleware } from '../mediator/stream-middleware.js'
import { ItemTransaction } from './item-transaction.js'

/** What {@link PostgresOutbox.itemTransactions} gives: register both. */
export interface ItemTransactions {
  /**
   * The plugin's (or mediator's) middleware that opens each stream's
   * {@link ItemTransaction} and commits it at every item, before the item
   * is handed on. Put it last (innermost) if there are others.
   */
  readonly middleware: StreamMiddleware
  /**
   * The Awilix registration that resolves to the stream's
   * `ItemTransaction`, under the name the handlers ask for.
   * @example
   * container.register({ tx: items.resolver })
   */
  readonly resolver: Resolver<ItemTransaction>
}

/** @internal builds the middleware and resolver over the outbox's table of open transactions. */
export function itemTransactions (pool: Pool, open: Map<string, ItemTransaction>): ItemTransactions {
  const middleware: StreamMiddleware = async function * (_request, next, context) {
    const { streamId, signal } = context
    const transaction = new ItemTransaction(pool, streamId)
    open.set(streamId, transaction)
    try {
      for await (const item of next()) {
        // The item of an aborted stream never reaches a client: its work is rolled back.
        if (signal.aborted) return
        await transaction.commit()
        yield item
      }
      // The handler's work after its last item.
      if (!signal.aborted) await transaction.commit()
    } finally {
      open.delete(streamId)
      await transaction.end()
    }
  }
  const resolver: Resolver<ItemTransaction> = {
    resolve: (container) => {
      const streamId = container.resolve<string>('streamId')
      const transaction = open.get(streamId)
      if (transaction === undefined) throw new ItemTransactionMissingError(streamId)
      return transaction
    },
    isLeakSafe: true,
  }
  return { middleware, resolver }
}
