// The PostgreSQL outbox and its relay against the real PostgreSQL: the
// table, transactions, LISTEN/NOTIFY wake-ups, retries and dead rows.
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { Type } from '@sinclair/typebox'
import pg from 'pg'
import t from 'tap'
import { InMemoryMessageBroker, NotificationEvent, type BrokerMessage } from '../src/index.js'
import { OutboxRelay, PostgresOutbox } from '../src/postgres/index.js'
import { outboxSql } from '../src/postgres/outbox-sql.js'
import { CuttingProxy } from './fixtures/cutting-proxy.js'
import { PG_URL, rowsOf, seedRows, testOutbox, testPool, uniqueTable } from './fixtures/postgres.js'
import { eventually } from './fixtures/sse-client.js'

class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({ orderId: Type.String() })) {}
class OrderPaid extends NotificationEvent('orders.paid', Type.Object({ orderId: Type.String() })) {}

function proxyUrl (proxy: CuttingProxy): string {
  const url = new URL(PG_URL)
  url.port = new URL(proxy.url).port
  return url.href
}

function quietLogger (): { errors: string[], warnings: string[], error (o: object, m: string): void, warn (o: object, m: string): void } {
  const errors: string[] = []
  const warnings: string[] = []
  return { errors, warnings, error (_o, m) { errors.push(m) }, warn (_o, m) { warnings.push(m) } }
}

t.test('migrate(): idempotent, safe from two instances at once; the shipped SQL file is the same migration', async (t) => {
  const pool = testPool(t)
  const table = uniqueTable()
  const outbox = await testOutbox(t, pool, table)
  await Promise.all([outbox.migrate(), new PostgresOutbox({ pool, table }).migrate()])
  const { rows } = await pool.query<{ column_name: string }>('SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position', [table])
  t.same(rows.map((row) => row.column_name), ['id', 'event_id', 'topic', 'name', 'payload', 'created_at', 'status', 'attempts', 'next_attempt_at', 'sent_at', 'last_error', 'headers'])
  const file = await readFile(new URL('../sql/outbox.sql', import.meta.url), 'utf8')
  t.ok(file.endsWith(outboxSql('cqrs_outbox').migrate), 'sql/outbox.sql holds what migrate() runs for the default table')
  t.equal(outbox.table, table)
})

t.test('migrate() upgrades a table made before headers were kept: the column is added, its rows stay', async (t) => {
  const pool = testPool(t)
  const table = uniqueTable()
  const outbox = await testOutbox(t, pool, table)
  await pool.query(`ALTER TABLE ${table} DROP COLUMN headers`)
  await pool.query(`INSERT INTO ${table} (event_id, topic, name, payload) VALUES ('old', 'orders.shipped', 'OrderShipped', '{}')`)
  await outbox.migrate()
  const { rows } = await pool.query(`SELECT event_id, headers FROM ${table}`)
  t.same(rows, [{ event_id: 'old', headers: null }])
})

t.test('bad options: coded errors that say what to pass', async (t) => {
  const pool = testPool(t)
  for (const table of ['Orders', 'a;drop table x', 'a.b.c', '']) {
    t.throws(() => new PostgresOutbox({ pool, table }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /"table" must be a lower-case SQL identifier/ }, table)
  }
  t.throws(() => new PostgresOutbox({ pool: {} as never }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /"pool" must be a pg Pool/ })
  const outbox = new PostgresOutbox({ pool })
  const broker = new InMemoryMessageBroker()
  t.throws(() => new OutboxRelay({ outbox: {} as never, broker }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /"outbox"/ })
  t.throws(() => new OutboxRelay({ outbox, broker: {} as never }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /"broker"/ })
  t.throws(() => new OutboxRelay({ outbox, broker: outbox }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /not the outbox itself/ })
  for (const option of ['batchSize', 'pollMs', 'maxAttempts'] as const) {
    t.throws(() => new OutboxRelay({ outbox, broker, [option]: 0 }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: new RegExp(`"${option}" must be an integer of at least 1`) })
  }
  t.throws(() => new OutboxRelay({ outbox, broker, retryDelayMs: 10, maxRetryDelayMs: 5 }), { message: /"maxRetryDelayMs" must be an integer of at least 10/ })
  t.throws(() => new OutboxRelay({ outbox, broker, retentionMs: 1.5 }), { message: /"retentionMs"/ })
  const client = await pool.connect()
  t.teardown(() => client.release())
  await t.rejects(outbox.add(client, [{ topic: 'x' } as never]), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /must be notification events/ })
})

t.test('a rolled-back transaction publishes nothing; a committed one is published once, woken by NOTIFY (the poll is a minute away)', async (t) => {
  const outbox = await testOutbox(t)
  const broker = new InMemoryMessageBroker()
  const relay = new OutboxRelay({ outbox, broker, pollMs: 60_000 })
  await relay.start()
  t.teardown(() => relay.stop())
  const client = await outbox.pool.connect()
  t.teardown(() => client.release())
  await client.query('BEGIN')
  await outbox.add(client, new OrderShipped({ orderId: 'rolled-back' }))
  await client.query('ROLLBACK')
  const shipped = new OrderShipped({ orderId: 'a' })
  const paid = new OrderPaid({ orderId: 'a' })
  await client.query('BEGIN')
  await outbox.add(client, [shipped, paid])
  await outbox.add(client, shipped)
  await client.query('COMMIT')
  await eventually(() => broker.messages.length === 2, 'both events published', 10_000)
  t.same(broker.messages, [
    { messageName: 'OrderShipped', messageId: shipped.eventId, topic: 'orders.shipped', payload: { orderId: 'a' } },
    { messageName: 'OrderPaid', messageId: paid.eventId, topic: 'orders.paid', payload: { orderId: 'a' } },
  ], 'the committed events, once each (the one added twice is kept once); nothing of the rolled-back one')
  await sleep(300)
  t.equal(broker.messages.length, 2, 'nothing more')
  t.same([...(await rowsOf(outbox.pool, outbox.table)).values()], [{ status: 'sent', attempts: 1 }, { status: 'sent', attempts: 1 }])
  t.same(relay.stats, { sent: 2, failed: 0, dead: 0, batches: 1 })
  await outbox.add(client, [])
})

t.test('as the messageBroker: send() writes a row of its own, which the relay publishes', async (t) => {
  const outbox = await testOutbox(t)
  const broker = new InMemoryMessageBroker()
  const message: BrokerMessage = { messageName: 'OrderShipped', messageId: 'id-1', topic: 'orders.shipped', payload: { orderId: 'b' } }
  await outbox.send(message)
  const relay = new OutboxRelay({ outbox, broker })
  await relay.start()
  t.teardown(() => relay.stop())
  await eventually(() => broker.messages.length === 1, 'the row left from before the start is sent at once')
  t.same(broker.messages, [message])
})

t.test('a broker that always fails: rows are retried with backoff, become dead after maxAttempts (logged), are listed, and retry(id) sends them', async (t) => {
  const outbox = await testOutbox(t)
  const logger = quietLogger()
  let sends = 0
  const failing = {
    async send (message: BrokerMessage): Promise<void> {
      sends++
      throw message.payload.orderId === 'x' ? new Error('the broker said no') : 'a string, not an Error'
    },
  }
  const relay = new OutboxRelay({ outbox, broker: failing, maxAttempts: 3, retryDelayMs: 20, maxRetryDelayMs: 40, logger })
  const events = [new OrderShipped({ orderId: 'x' }), new OrderShipped({ orderId: 'y' })]
  await seedRows(outbox, events)
  await relay.start()
  await eventually(() => relay.stats.dead === 2, 'both rows dead', 10_000)
  await relay.stop()
  t.equal(sends, 6, 'three attempts each')
  t.same(relay.stats, { sent: 0, failed: 6, dead: 2, batches: relay.stats.batches })
  t.equal(logger.errors.length, 2, 'each dead row logged as an error')
  t.match(logger.errors[0], /ran out of attempts and is dead; list it with outbox.dead\(\) and send it again with outbox.retry\(id\)/)
  t.equal(logger.warnings.length, 4, 'each retried failure as a warning')
  const dead = await outbox.dead()
  t.match(dead, [
    { message: { messageName: 'OrderShipped', messageId: events[0]!.eventId, topic: 'orders.shipped', payload: { orderId: 'x' } }, attempts: 3, lastError: 'Error: the broker said no', createdAt: Date },
    { message: { messageId: events[1]!.eventId }, attempts: 3, lastError: 'a string, not an Error' },
  ])
  t.equal(await outbox.retry('0'), false, 'no dead row of that id')
  const broker = new InMemoryMessageBroker()
  const working = new OutboxRelay({ outbox, broker, pollMs: 60_000 })
  await working.start()
  t.teardown(() => working.stop())
  t.equal(await outbox.retry(dead[0]!.id), true)
  await eventually(() => broker.messages.length === 1, 'the retried row sent, woken by NOTIFY')
  t.equal(broker.messages[0]!.messageId, events[0]!.eventId)
  t.equal(await outbox.retry(dead[0]!.id), false, 'no longer dead')
  t.equal((await outbox.dead()).length, 1, 'the other one stays dead')
})

t.test('a send that fails once is retried and sent; the failure is a warning, not an error', async (t) => {
  const outbox = await testOutbox(t)
  const logger = quietLogger()
  const broker = new InMemoryMessageBroker()
  let failNext = true
  const flaky = { async send (message: BrokerMessage): Promise<void> { if (failNext) { failNext = false; throw new Error('once') } await broker.send(message) } }
  const relay = new OutboxRelay({ outbox, broker: flaky, retryDelayMs: 50, logger })
  await seedRows(outbox, [new OrderShipped({ orderId: 'z' })])
  await relay.start()
  t.teardown(() => relay.stop())
  await eventually(() => broker.messages.length === 1, 'sent on the retry, at its delay, not at the 5 s poll', 3000)
  t.same(logger.errors, [])
  t.match(logger.warnings, [/failed to send; it is retried/])
  t.same([...(await rowsOf(outbox.pool, outbox.table)).values()], [{ status: 'sent', attempts: 2 }])
})

t.test('two relays on 10,000 rows: every row published, none twice', async (t) => {
  const outbox = await testOutbox(t)
  const events = Array.from({ length: 10_000 }, (_, i) => new OrderShipped({ orderId: String(i) }))
  await seedRows(outbox, events)
  const broker = new InMemoryMessageBroker()
  const other = new PostgresOutbox({ pool: testPool(t), table: outbox.table })
  const relays = [new OutboxRelay({ outbox, broker, batchSize: 200 }), new OutboxRelay({ outbox: other, broker, batchSize: 200 })]
  await Promise.all(relays.map((relay) => relay.start()))
  t.teardown(() => Promise.all(relays.map((relay) => relay.stop())))
  await eventually(() => broker.messages.length >= 10_000, 'every row', 60_000)
  await sleep(200)
  const ids = broker.messages.map((m) => m.messageId)
  t.equal(ids.length, 10_000, 'no row sent twice')
  t.equal(new Set(ids).size, 10_000, 'every row once')
  t.ok(relays.every((relay) => relay.stats.sent > 0), `both relays took part (${relays.map((r) => r.stats.sent).join(' + ')})`)
  const statuses = new Set([...(await rowsOf(outbox.pool, outbox.table)).values()].map((row) => row.status))
  t.same([...statuses], ['sent'])
})

t.test('orderPerTopic: with two relays and a broker that fails one send in five, each topic is published in commit order, every row once', async (t) => {
  const outbox = await testOutbox(t)
  const events = Array.from({ length: 600 }, (_, i) => i % 3 === 0 ? new OrderPaid({ orderId: String(i) }) : new OrderShipped({ orderId: String(i) }))
  for (let i = 0; i < events.length; i += 50) await seedRows(outbox, events.slice(i, i + 50))
  const published: BrokerMessage[] = []
  let n = 0
  const flaky = {
    async send (message: BrokerMessage): Promise<void> {
      await sleep(0)
      if (++n % 5 === 0) throw new Error('every fifth send fails')
      published.push(message)
    },
  }
  const other = new PostgresOutbox({ pool: testPool(t), table: outbox.table })
  const relays = [outbox, other].map((o) => new OutboxRelay({ outbox: o, broker: flaky, batchSize: 40, orderPerTopic: true, retryDelayMs: 1, maxRetryDelayMs: 5, maxAttempts: 100 }))
  await Promise.all(relays.map((relay) => relay.start()))
  t.teardown(() => Promise.all(relays.map((relay) => relay.stop())))
  await eventually(() => published.length >= 600, 'every row', 60_000)
  const order = new Map(events.map((event, i) => [event.eventId, i]))
  for (const topic of ['orders.paid', 'orders.shipped']) {
    const seen = published.filter((m) => m.topic === topic).map((m) => order.get(m.messageId)!)
    t.same(seen, [...seen].sort((a, b) => a - b), `${topic}: in commit order`)
    t.equal(new Set(seen).size, seen.length, `${topic}: none twice`)
  }
  t.equal(published.length, 600)
  t.ok(relays[0]!.stats.failed + relays[1]!.stats.failed >= 120, 'a fifth of the sends failed and were retried')
})

t.test('stop() finishes the batch in flight: the slow send is confirmed and its row marked sent', async (t) => {
  const outbox = await testOutbox(t)
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let started!: () => void
  const sending = new Promise<void>((resolve) => { started = resolve })
  const sent: string[] = []
  const slow = { async send (message: BrokerMessage): Promise<void> { started(); await gate; sent.push(message.messageId) } }
  const relay = new OutboxRelay({ outbox, broker: slow })
  await seedRows(outbox, [new OrderShipped({ orderId: 's' })])
  await relay.start()
  await sending
  const stopped = relay.stop()
  await sleep(50)
  release()
  await stopped
  t.equal(sent.length, 1)
  t.same([...(await rowsOf(outbox.pool, outbox.table)).values()], [{ status: 'sent', attempts: 1 }], 'marked before stop() resolved')
  await relay.stop()
})

t.test('retention: sent rows past retentionMs are deleted; pending and dead ones stay', async (t) => {
  const outbox = await testOutbox(t)
  const broker = new InMemoryMessageBroker()
  await seedRows(outbox, Array.from({ length: 1500 }, (_, i) => new OrderShipped({ orderId: String(i) })))
  await outbox.pool.query(`INSERT INTO ${outbox.table} (event_id, topic, name, payload, status, attempts) VALUES ('dead-1', 't', 'N', '{}', 'dead', 3)`)
  const relay = new OutboxRelay({ outbox, broker, retentionMs: 0, cleanupEveryMs: 1, batchSize: 500, pollMs: 20 })
  await relay.start()
  t.teardown(() => relay.stop())
  await eventually(() => broker.messages.length === 1500, 'every row sent', 20_000)
  let left = -1
  for (let i = 0; i < 100 && left !== 1; i++) {
    left = (await rowsOf(outbox.pool, outbox.table)).size
    await sleep(50)
  }
  t.equal(left, 1, 'the sent rows are gone, in slices of 1,000')
  t.same([...(await rowsOf(outbox.pool, outbox.table)).values()], [{ status: 'dead', attempts: 3 }])
})

t.test('the LISTEN connection is terminated: the relay warns, polls, listens again, and is woken by NOTIFY again', async (t) => {
  const outbox = await testOutbox(t)
  const broker = new InMemoryMessageBroker()
  const logger = quietLogger()
  const relay = new OutboxRelay({ outbox, broker, pollMs: 200, logger })
  await relay.start()
  t.teardown(() => relay.stop())
  const killed = await outbox.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN ${outbox.sql.channel}'`)
  t.equal(killed.rowCount, 1, 'one listening backend')
  await eventually(() => logger.warnings.some((w) => /lost its LISTEN connection/.test(w)), 'the warning')
  await seedRows(outbox, [new OrderShipped({ orderId: 'p' })])
  await eventually(() => broker.messages.length === 1, 'sent by the poll meanwhile, or on the new LISTEN')
  let listening = 0
  for (let i = 0; i < 100 && listening !== 1; i++) {
    listening = (await outbox.pool.query(`SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN ${outbox.sql.channel}'`)).rowCount ?? 0
    await sleep(50)
  }
  t.equal(listening, 1, 'listening again')
})

t.test('migrate() on a name taken by a view: rejects with PostgreSQL\'s error and leaves the connection usable', async (t) => {
  const pool = testPool(t, 1)
  const table = uniqueTable()
  await pool.query(`CREATE VIEW ${table} AS SELECT 1 AS one`)
  t.teardown(() => pool.query(`DROP VIEW IF EXISTS ${table}`))
  await t.rejects(new PostgresOutbox({ pool, table }).migrate(), { code: '42809', message: /ALTER action ADD COLUMN cannot be performed on relation/ })
  t.same((await pool.query('SELECT 1 AS ok')).rows, [{ ok: 1 }], 'the one pooled connection was rolled back, not left in a failed transaction')
})

t.test('PostgreSQL unreachable at start, then back; then cut mid-batch: the relay warns, polls, and every row is sent (the cut batch again)', async (t) => {
  const direct = await testOutbox(t)
  const proxy = await CuttingProxy.start(Number(new URL(PG_URL).port || 5432))
  t.teardown(() => proxy.close())
  proxy.refusing = true
  const viaProxy = new PostgresOutbox({ pool: new pg.Pool({ connectionString: proxyUrl(proxy), max: 4 }), table: direct.table })
  viaProxy.pool.on('error', () => {})
  t.teardown(() => viaProxy.pool.end())
  const logger = quietLogger()
  const sent: string[] = []
  let gate: Promise<void> | undefined
  let inFlight: (() => void) | undefined
  const broker = { async send (message: BrokerMessage): Promise<void> { inFlight?.(); await gate; sent.push(message.messageId) } }
  const relay = new OutboxRelay({ outbox: viaProxy, broker, pollMs: 50, logger })
  await relay.start()
  t.teardown(() => relay.stop())
  t.match(logger.warnings, [/cannot LISTEN; polling until it can/])
  await eventually(() => logger.warnings.some((w) => /an outbox batch failed/.test(w)), 'a failed batch')
  const first = [new OrderShipped({ orderId: '1' }), new OrderShipped({ orderId: '2' })]
  await seedRows(direct, first)
  proxy.refusing = false
  await eventually(() => sent.length === 2, 'sent once PostgreSQL answers', 10_000)

  let release!: () => void
  gate = new Promise((resolve) => { release = resolve })
  const reached = new Promise<void>((resolve) => { inFlight = resolve })
  const second = [new OrderPaid({ orderId: '3' }), new OrderPaid({ orderId: '4' })]
  await seedRows(direct, second)
  await reached
  proxy.cut()
  release()
  gate = undefined
  inFlight = undefined
  await eventually(() => second.every((event) => sent.filter((id) => id === event.eventId).length === 2), 'the cut batch sent again', 10_000)
  let statuses: string[] = []
  for (let i = 0; i < 100; i++) {
    statuses = [...(await rowsOf(direct.pool, direct.table)).values()].map((row) => row.status)
    if (statuses.every((status) => status === 'sent')) break
    await sleep(50)
  }
  t.same(statuses, ['sent', 'sent', 'sent', 'sent'], 'every row marked sent in the end')
  t.same(sent.filter((id) => first.some((event) => event.eventId === id)).length, 2, 'the rows before the cut once each')
})

t.test('stop() while start() sets up the LISTEN: nothing is left listening or polling; start() twice starts once', async (t) => {
  const outbox = await testOutbox(t)
  const listening = async (): Promise<number> =>
    (await outbox.pool.query(`SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN ${outbox.sql.channel}'`)).rowCount ?? 0
  const broker = new InMemoryMessageBroker()
  const relay = new OutboxRelay({ outbox, broker, pollMs: 20 })
  const starting = relay.start()
  await relay.stop()
  await starting
  await seedRows(outbox, [new OrderShipped({ orderId: 'q' })])
  await sleep(200)
  t.equal(await listening(), 0, 'its LISTEN connection closed')
  t.same(broker.messages, [], 'nothing relayed')

  const proxy = await CuttingProxy.start(Number(new URL(PG_URL).port || 5432))
  t.teardown(() => proxy.close())
  proxy.refusing = true
  const pool = new pg.Pool({ connectionString: proxyUrl(proxy) })
  t.teardown(() => pool.end())
  const unreachable = new OutboxRelay({ outbox: new PostgresOutbox({ pool, table: outbox.table }), broker: new InMemoryMessageBroker(), pollMs: 20 })
  const failing = unreachable.start()
  await unreachable.stop()
  await failing
  const tried = proxy.refused
  await sleep(200)
  t.equal(proxy.refused, tried, 'its LISTEN is not tried again after stop()')
  t.equal(tried, 1, 'it was tried once')

  const again = new OutboxRelay({ outbox, broker, pollMs: 60_000 })
  await again.start()
  await again.start()
  t.teardown(() => again.stop())
  await eventually(() => broker.messages.length === 1, 'the row')
  t.equal(await listening(), 1, 'one LISTEN')
})

t.test('listen: false (e.g. behind PgBouncer): no LISTEN connection, rows are sent by the poll', async (t) => {
  const outbox = await testOutbox(t)
  const broker = new InMemoryMessageBroker()
  const relay = new OutboxRelay({ outbox, broker, listen: false, pollMs: 100 })
  await relay.start()
  t.teardown(() => relay.stop())
  await seedRows(outbox, [new OrderShipped({ orderId: 'poll' })])
  await eventually(() => broker.messages.length === 1, 'sent by the poll')
  const { rowCount } = await outbox.pool.query(`SELECT 1 FROM pg_stat_activity WHERE query = 'LISTEN ${outbox.sql.channel}'`)
  t.equal(rowCount, 0, 'nothing listens')
})
