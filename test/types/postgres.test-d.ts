// Type tests of the PostgreSQL outbox, fastify-cqrs-stream/postgres (see expect.ts).
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import pg from 'pg'
import { createContainer } from 'awilix'
import type { PoolClient, QueryResult } from 'pg'
import fastifyCqrsStream, {
  NotificationEvent, Request, Response, StreamingRequestHandler, type BrokerMessage, type MessageBroker, type StreamContext, type StreamMiddleware,
} from '../../src/index.js'
import {
  ItemTransaction, OutboxRelay, PostgresOutbox, type DeadOutboxRow, type ItemTransactions, type OutboxRelayOptions, type OutboxRelayStats,
} from '../../src/postgres/index.js'
import { expectAssignable, expectExact, use } from './expect.js'

class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({ orderId: Type.String() })) {}
class ShipOrders extends Request(Type.Object({ orderIds: Type.Array(Type.String()) })) {}
class Shipped extends Response(Type.Object({ orderId: Type.String() })) {}

// A handler takes the stream's item transaction from its dependencies.
class ShipOrdersHandler extends StreamingRequestHandler<ShipOrders, Shipped> {
  constructor (private readonly deps: { tx: ItemTransaction }) { super() }
  async * handle (command: ShipOrders): AsyncGenerator<Shipped> {
    for (const orderId of command.orderIds) {
      const result = await this.deps.tx.query<{ id: string }>('UPDATE orders SET shipped = true WHERE id = $1 RETURNING id', [orderId])
      expectExact<QueryResult<{ id: string }>>()(result)
      expectExact<Promise<PoolClient>>()(this.deps.tx.client())
      expectExact<string>()(this.deps.tx.streamId)
      this.emit(new OrderShipped({ orderId }))
      yield new Shipped({ orderId })
    }
  }
}

export async function wire (): Promise<void> {
  const pool = new pg.Pool({ connectionString: 'postgres://localhost/app' })
  const outbox = new PostgresOutbox({ pool, table: 'app.outbox' })
  expectExact<Promise<void>>()(outbox.migrate())
  expectExact<string>()(outbox.table)
  // It stands where a broker goes.
  expectAssignable<MessageBroker>(outbox)
  const app = Fastify()
  await app.register(fastifyCqrsStream, { messageBroker: outbox })

  // add() takes a client in a transaction, and one notification event or several.
  const client = await pool.connect()
  expectExact<Promise<void>>()(outbox.add(client, new OrderShipped({ orderId: 'a' })))
  expectExact<Promise<void>>()(outbox.add(client, [new OrderShipped({ orderId: 'a' })]))
  // @ts-expect-error a plain object is not a notification event
  use(outbox.add(client, { orderId: 'a' }))
  // @ts-expect-error the pool is required
  use(new PostgresOutbox({ table: 'x' }))

  expectExact<Promise<DeadOutboxRow[]>>()(outbox.dead())
  const [row] = await outbox.dead(10)
  expectExact<string>()(row!.id)
  expectExact<BrokerMessage>()(row!.message)
  expectExact<string | null>()(row!.lastError)
  expectExact<Promise<boolean>>()(outbox.retry(row!.id))

  // Items as commit points: a middleware and a resolver.
  const items = outbox.itemTransactions()
  expectExact<ItemTransactions>()(items)
  expectAssignable<StreamMiddleware>(items.middleware)
  const container = createContainer().register({ tx: items.resolver })
  await app.register(fastifyCqrsStream, {
    container, messageBroker: outbox, middlewares: [items.middleware], requests: (map) => map.bind(ShipOrders, ShipOrdersHandler),
  })
  // @ts-expect-error made by the middleware, not by hand... (its constructor takes a pool and a stream id)
  use(new ItemTransaction())
  // A broker gets the emitting stream's context.
  expectExact<Promise<void>>()(outbox.send({ messageName: 'N', messageId: 'i', topic: 't', payload: {} }, { streamId: 's', signal: new AbortController().signal } satisfies StreamContext))

  const broker: MessageBroker = { async send () {} }
  const options: OutboxRelayOptions = {
    outbox,
    broker,
    batchSize: 100,
    pollMs: 5000,
    maxAttempts: 10,
    retryDelayMs: 1000,
    maxRetryDelayMs: 300_000,
    orderPerTopic: true,
    listen: false,
    retentionMs: 86_400_000,
    cleanupEveryMs: 60_000,
    logger: app.log,
  }
  const relay = new OutboxRelay(options)
  expectExact<Promise<void>>()(relay.start())
  expectExact<Promise<void>>()(relay.stop())
  expectExact<OutboxRelayStats>()(relay.stats)
  // @ts-expect-error the broker is required
  use(new OutboxRelay({ outbox }))
  // @ts-expect-error stats are read-only
  relay.stats.sent = 1
}
