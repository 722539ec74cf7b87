// Items as commit points (fastify-cqrs-stream/postgres): what a handler
// writes for item N and the events it emits for it are committed together
// before item N reaches the client; a throw, an abort or a failed COMMIT
// rolls back the item in progress with its events. Against the real
// PostgreSQL, through real sockets where a disconnect matters.
import { Type } from '@sinclair/typebox'
import { asValue, createContainer } from 'awilix'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import fastifyCqrsStream, { InMemoryMessageBroker, NotificationEvent, Request, Response, StreamingRequestHandler, type StreamContext } from '../src/index.js'
import { OutboxRelay, type ItemTransaction, type PostgresOutbox } from '../src/postgres/index.js'
import { testOutbox, testPool, uniqueTable } from './fixtures/postgres.js'
import { deferred, eventually, listen, openSse, startStreamId, type Deferred } from './fixtures/sse-client.js'

class ShipCommand extends Request(Type.Object({
  count: Type.Integer({ minimum: 1 }),
  // 0: never.
  failAt: Type.Integer({ default: 0 }),
  holdAt: Type.Integer({ default: 0 }),
  // Go on after an abort as if nothing happened (a handler that ignores its signal).
  ignoreAbort: Type.Boolean({ default: false }),
  // Write a duplicate at this item: the deferred unique constraint fails its COMMIT.
  duplicateAt: Type.Integer({ default: 0 }),
  // A statement of this item fails, and the handler catches the error.
  swallowAt: Type.Integer({ default: 0 }),
  // Write and emit nothing: the item transactions never begin.
  skipWrites: Type.Boolean({ default: false }),
})) {}
class Shipped extends Response(Type.Object({ n: Type.Integer() })) {}
class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({ n: Type.Integer() })) {}

interface Steering {
  table: string
  /** Resolved when the held item has written its row and emitted its event. */
  held: Deferred
  /** The transactions handlers got, to use after their stream. */
  seen: ItemTransaction[]
}

class ShipHandler extends StreamingRequestHandler<ShipCommand, Shipped> {
  constructor (private readonly deps: { tx: ItemTransaction, steering: Steering }) { super() }

  async * handle (command: ShipCommand, { signal }: StreamContext): AsyncGenerator<Shipped> {
    const { tx, steering } = this.deps
    steering.seen.push(tx)
    for (let n = 1; n <= command.count; n++) {
      if (command.skipWrites) {
        yield new Shipped({ n })
        continue
      }
      await tx.query(`INSERT INTO ${steering.table} (n) VALUES ($1)`, [n === command.duplicateAt ? 1 : n])
      if (n === command.swallowAt) await tx.query('SELECT 1 / 0').catch(() => {})
      this.emit(new OrderShipped({ n }))
      if (n === command.failAt) throw new Error(`item ${n} failed`)
      if (n === command.holdAt) {
        steering.held.resolve()
        await new Promise((resolve) => { signal.addEventListener('abort', resolve, { once: true }) })
        if (!command.ignoreAbort) throw signal.reason
      }
      yield new Shipped({ n })
    }
  }
}

interface Rig {
  port: number
  app: ReturnType<typeof Fastify>
  outbox: PostgresOutbox
  published: InMemoryMessageBroker
  steering: Steering
  /** The n of every committed row, in order. */
  rows (): Promise<number[]>
  /** The n of every event in the outbox, in order. */
  outboxed (): Promise<number[]>
}

async function rig (t: Test, options: { resume?: boolean, middleware?: boolean } = {}): Promise<Rig> {
  const outbox = await testOutbox(t)
  const pool = outbox.pool
  const table = uniqueTable().replace('outbox', 'items')
  await pool.query(`CREATE TABLE ${table} (n integer NOT NULL, CONSTRAINT ${table}_n UNIQUE (n) DEFERRABLE INITIALLY DEFERRED)`)
  t.teardown(() => testPool(t).query(`DROP TABLE IF EXISTS ${table}`))
  const steering: Steering = { table, held: deferred(), seen: [] }
  const items = outbox.itemTransactions()
  const container = createContainer({ strict: true }).register({ steering: asValue(steering), tx: items.resolver })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, {
    container,
    requests: (map) => map.bind(ShipCommand, ShipHandler),
    messageBroker: outbox,
    middlewares: options.middleware === false ? [] : [items.middleware],
    heartbeatMs: 0,
  })
  app.streamRoute({ method: 'POST', url: '/ship', request: ShipCommand, response: Shipped, ...(options.resume === true ? { resume: true as const } : {}) })
  const port = await listen(app)
  const published = new InMemoryMessageBroker()
  const relay = new OutboxRelay({ outbox, broker: published, pollMs: 100 })
  await relay.start()
  t.teardown(() => relay.stop())
  return {
    port,
    app,
    outbox,
    published,
    steering,
    rows: async () => (await pool.query<{ n: number }>(`SELECT n FROM ${table} ORDER BY n`)).rows.map((row) => row.n),
    outboxed: async () => (await pool.query<{ n: number }>(`SELECT (payload->>'n')::int AS n FROM ${outbox.table} ORDER BY id`)).rows.map((row) => row.n),
  }
}

const dataOf = (client: { parser: { frames: Array<{ data: string }> } }): unknown[] => client.parser.frames.map((frame) => JSON.parse(frame.data))

t.test('each item is committed, with its event, before it reaches the consumer', async (t) => {
  const { app, rows, outboxed, published } = await rig(t)
  const seen: Array<{ n: number, rows: number[], events: number[] }> = []
  for await (const item of app.mediator.stream(new ShipCommand({ count: 3, failAt: 0, holdAt: 0, ignoreAbort: false, duplicateAt: 0, swallowAt: 0, skipWrites: false })) as AsyncIterable<Shipped>) {
    // Read on another connection: only committed work shows.
    seen.push({ n: item.n, rows: await rows(), events: await outboxed() })
  }
  t.same(seen, [
    { n: 1, rows: [1], events: [1] },
    { n: 2, rows: [1, 2], events: [1, 2] },
    { n: 3, rows: [1, 2, 3], events: [1, 2, 3] },
  ])
  await eventually(() => published.messages.length === 3, 'the relay publishes the three events')
  t.same(published.messages.map((m) => m.payload), [{ n: 1 }, { n: 2 }, { n: 3 }])

  const quiet: number[] = []
  for await (const item of app.mediator.stream(new ShipCommand({ count: 2, failAt: 0, holdAt: 0, ignoreAbort: false, duplicateAt: 0, swallowAt: 0, skipWrites: true })) as AsyncIterable<Shipped>) quiet.push(item.n)
  t.same(quiet, [1, 2], 'a stream that queries nothing: its items, no transaction')
  t.same(await rows(), [1, 2, 3])
})

t.test('a handler that fails at item 3: items 1–2 committed and their events published; item 3 rolled back, its event never published', async (t) => {
  const { port, rows, outboxed, published } = await rig(t)
  const client = await openSse(port, '/ship', { method: 'POST', body: JSON.stringify({ count: 5, failAt: 3 }) })
  await client.ended
  t.match(dataOf(client), [{ type: 'start' }, { type: 'progress', data: { n: 1 } }, { type: 'progress', data: { n: 2 } }, { type: 'error' }])
  t.equal(client.parser.frames.length, 4)
  t.same(await rows(), [1, 2])
  t.same(await outboxed(), [1, 2])
  await eventually(() => published.messages.length === 2, 'the two committed events published')
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(published.messages.map((m) => m.payload), [{ n: 1 }, { n: 2 }], 'and nothing of item 3')
})

for (const ignoreAbort of [false, true]) {
  t.test(`the client leaves mid-item 3 (the handler ${ignoreAbort ? 'ignores the abort and yields item 3 anyway' : 'stops on its signal'}): item 3 and its event are rolled back`, async (t) => {
    const { port, app, rows, outboxed, published, steering } = await rig(t)
    const client = await openSse(port, '/ship', { method: 'POST', body: JSON.stringify({ count: 5, holdAt: 3, ignoreAbort }) })
    await startStreamId(client)
    await steering.held.promise
    t.same(dataOf(client).slice(1), [{ type: 'progress', data: { n: 1 } }, { type: 'progress', data: { n: 2 } }])
    client.destroy()
    await eventually(() => app.streamStats().openStreams === 0, 'the stream to end')
    await eventually(() => steering.seen.length === 1, 'one stream')
    // The stream's end is reported before its middleware has rolled back (the mediator settles after).
    let error: { code?: string } | undefined
    for (let i = 0; i < 100 && error === undefined; i++) {
      error = await steering.seen[0]!.query('SELECT 1').then(() => undefined, (e: { code?: string }) => e)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    t.equal(error?.code, 'FST_ERR_CQRS_STREAM_TRANSACTION_ENDED', 'its transaction is closed')
    t.same(await rows(), [1, 2])
    t.same(await outboxed(), [1, 2])
    await eventually(() => published.messages.length === 2, 'the two committed events published')
  })
}

t.test('a COMMIT that fails (a deferred unique violation at item 3): the stream ends with an error frame, and a reconnect replays it, never item 3', async (t) => {
  const { port, rows, outboxed } = await rig(t, { resume: true })
  const client = await openSse(port, '/ship', { method: 'POST', body: JSON.stringify({ count: 5, duplicateAt: 3 }) })
  const streamId = await startStreamId(client)
  await client.ended
  t.match(dataOf(client), [{ type: 'start' }, { type: 'progress', data: { n: 1 } }, { type: 'progress', data: { n: 2 } }, { type: 'error' }])
  t.same(await rows(), [1, 2])
  t.same(await outboxed(), [1, 2])
  const again = await openSse(port, '/ship', { method: 'POST', body: JSON.stringify({ count: 5, duplicateAt: 3 }), headers: { 'last-event-id': `${streamId}:2` } })
  await again.ended
  t.match(dataOf(again), [{ type: 'error' }], 'a reconnect after item 1 gets what followed it: the error frame, no item 3')
  t.equal(again.parser.frames.length, 1)
})

t.test('without the middleware: resolving tx fails with FST_ERR_CQRS_STREAM_NO_TRANSACTION; events still go to the outbox, each on its own', async (t) => {
  const { app, outbox } = await rig(t, { middleware: false })
  const stream = app.mediator.stream(new ShipCommand({ count: 1, failAt: 0, holdAt: 0, ignoreAbort: false, duplicateAt: 0, swallowAt: 0, skipWrites: false }))
  await t.rejects(stream.next(), { code: 'FST_ERR_CQRS_STREAM_NO_TRANSACTION', message: /Add outbox.itemTransactions\(\).middleware/ })
  await outbox.send({ messageName: 'OrderShipped', messageId: 'direct', topic: 'orders.shipped', payload: { n: 9 } }, { streamId: 'no-such-stream', signal: new AbortController().signal })
  t.equal((await outbox.pool.query(`SELECT 1 FROM ${outbox.table} WHERE event_id = 'direct'`)).rowCount, 1, 'a stream without an item transaction: written at once')
})

t.test('the database connection is killed mid-item 3: the stream ends, its connection is dropped (not pooled), and items 1–2 stay committed', async (t) => {
  const { port, app, rows, outboxed, steering, outbox } = await rig(t)
  const client = await openSse(port, '/ship', { method: 'POST', body: JSON.stringify({ count: 5, holdAt: 3 }) })
  await steering.held.promise
  // pg's client has processID; @types/pg leaves it out.
  const pid = ((await steering.seen[0]!.client()) as unknown as { processID: number }).processID
  await outbox.pool.query('SELECT pg_terminate_backend($1)', [pid])
  await new Promise((resolve) => setTimeout(resolve, 100))
  client.destroy()
  await eventually(() => app.streamStats().openStreams === 0, 'the stream to end')
  t.same(await rows(), [1, 2])
  t.same(await outboxed(), [1, 2])
  t.same((await outbox.pool.query('SELECT 1 AS ok')).rows, [{ ok: 1 }], 'the pool works: the dead connection was not given back')
})

t.test('a failed statement the handler caught: PostgreSQL rolls the item back at COMMIT, and the stream ends with FST_ERR_CQRS_STREAM_TRANSACTION_FAILED instead of sending it', async (t) => {
  const { port, rows, outboxed } = await rig(t)
  const client = await openSse(port, '/ship', { method: 'POST', body: JSON.stringify({ count: 5, swallowAt: 2 }) })
  await client.ended
  t.match(dataOf(client), [
    { type: 'start' },
    { type: 'progress', data: { n: 1 } },
    { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_TRANSACTION_FAILED', message: /rolled back by PostgreSQL/ } },
  ])
  t.equal(client.parser.frames.length, 3, 'item 2 never sent')
  t.same(await rows(), [1])
  t.same(await outboxed(), [1])
})
