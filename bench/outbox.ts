// The PostgreSQL outbox (issue #13): commit-to-confirm latency, woken by
// LISTEN/NOTIFY against polling, and relay throughput with 1 and 4 relays,
// against the real PostgreSQL and RabbitMQ.
//
//   node --import tsx bench/outbox.ts [--quick]
//   (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; AMQP_URL, default amqp://guest:guest@127.0.0.1:5672)
//
// Latency: one event per transaction, committed every 20 ms; from COMMIT's
// reply to RabbitMQ's publisher confirm of that event (the relay's send
// resolving), through a topic exchange with one durable queue bound (so the
// broker writes each persistent message before it confirms). Throughput: a
// backlog of committed rows, sent by 1 relay, then by 4 (each with its own
// pool and broker connection, as 4 instances would); rows/s from start() to
// the last confirm. Printed: p50/p99/max latency, rows/s, and the ratios.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Type } from '@sinclair/typebox'
import { connect } from 'amqplib'
import pg from 'pg'
import { AmqpMessageBroker } from '../src/amqp/index.js'
import { NotificationEvent, type BrokerMessage, type MessageBroker } from '../src/index.js'
import { OutboxRelay, PostgresOutbox } from '../src/postgres/index.js'
import { median } from './lib/stats.js'

const PG_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const quick = process.argv.includes('--quick')
const LATENCY_EVENTS = quick ? 50 : 300
const BACKLOG = quick ? 2000 : 20_000
const suffix = randomUUID().slice(0, 8)
const table = `bench_outbox_${suffix}`
const exchange = `bench.outbox.${suffix}`
const queue = exchange

class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({
  orderId: Type.String(), customerId: Type.String(), totalAmount: Type.Number(), shippedAt: Type.String(),
})) {}
const event = (n: number): OrderShipped =>
  new OrderShipped({ orderId: `order-${n}`, customerId: 'customer-42', totalAmount: 129.9, shippedAt: '2026-11-26T05:00:00.000Z' })

/** The broker, with the time each message's confirm arrived. */
class Timed implements MessageBroker {
  readonly confirmed = new Map<string, number>()
  constructor (readonly broker: AmqpMessageBroker) {}
  async send (message: BrokerMessage): Promise<void> {
    await this.broker.send(message)
    this.confirmed.set(message.messageId, performance.now())
  }
}

const admin = await connect(AMQP_URL)
const channel = await admin.createChannel()
await channel.assertExchange(exchange, 'topic', { durable: true })
await channel.assertQueue(queue, { durable: true })
await channel.bindQueue(queue, exchange, '#')
const pools: pg.Pool[] = []
const brokers: AmqpMessageBroker[] = []
const newPool = (): pg.Pool => { const pool = new pg.Pool({ connectionString: PG_URL }); pools.push(pool); return pool }
const newBroker = async (): Promise<AmqpMessageBroker> => { const broker = await AmqpMessageBroker.connect({ url: AMQP_URL, exchange }); brokers.push(broker); return broker }

const outbox = new PostgresOutbox({ pool: newPool(), table })
await outbox.migrate()

async function waitFor (predicate: () => boolean, ms: number): Promise<void> {
  const until = performance.now() + ms
  while (!predicate()) {
    if (performance.now() > until) throw new Error('timed out')
    await sleep(2)
  }
}

interface Latency { p50: number, p99: number, max: number }

function percentile (sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
}

async function latency (label: string, options: { listen: boolean, pollMs: number }): Promise<Latency> {
  const timed = new Timed(await newBroker())
  const relay = new OutboxRelay({ outbox, broker: timed, ...options })
  await relay.start()
  const committed = new Map<string, number>()
  const client = await outbox.pool.connect()
  for (let n = 0; n < LATENCY_EVENTS; n++) {
    const one = event(n)
    await client.query('BEGIN')
    await outbox.add(client, one)
    await client.query('COMMIT')
    committed.set(one.eventId, performance.now())
    await sleep(20)
  }
  client.release()
  await waitFor(() => [...committed.keys()].every((id) => timed.confirmed.has(id)), options.pollMs * 3 + 10_000)
  await relay.stop()
  const ms = [...committed].map(([id, at]) => timed.confirmed.get(id)! - at).sort((a, b) => a - b)
  const s = { p50: median(ms), p99: percentile(ms, 0.99), max: ms.at(-1)! }
  console.log(`  ${label.padEnd(30)} p50 ${s.p50.toFixed(1).padStart(7)} ms   p99 ${s.p99.toFixed(1).padStart(7)} ms   max ${s.max.toFixed(1).padStart(7)} ms   (${ms.length} events)`)
  return s
}

async function throughput (relays: number): Promise<number> {
  await outbox.pool.query(`TRUNCATE ${table}`)
  const client = await outbox.pool.connect()
  await client.query('BEGIN')
  for (let n = 0; n < BACKLOG; n += 1000) await outbox.add(client, Array.from({ length: 1000 }, (_, i) => event(n + i)))
  await client.query('COMMIT')
  client.release()
  const running: OutboxRelay[] = []
  for (let i = 0; i < relays; i++) {
    running.push(new OutboxRelay({ outbox: new PostgresOutbox({ pool: newPool(), table }), broker: await newBroker(), pollMs: 60_000 }))
  }
  const started = performance.now()
  await Promise.all(running.map((relay) => relay.start()))
  await waitFor(() => running.reduce((sum, relay) => sum + relay.stats.sent, 0) >= BACKLOG, 120_000)
  const rate = BACKLOG / ((performance.now() - started) / 1000)
  await Promise.all(running.map((relay) => relay.stop()))
  await channel.purgeQueue(queue)
  console.log(`  ${`${relays} relay${relays > 1 ? 's' : ''}`.padEnd(30)} ${Math.round(rate).toLocaleString('en-US').padStart(7)} rows/s   (${BACKLOG.toLocaleString('en-US')} rows, batches of 100)`)
  return rate
}

try {
  console.log(`commit-to-confirm latency, one event per transaction every 20 ms (${LATENCY_EVENTS} events)`)
  const woken = await latency('LISTEN/NOTIFY', { listen: true, pollMs: 5000 })
  const polled = await latency('poll every 1 s (listen: false)', { listen: false, pollMs: 1000 })
  console.log(`  p50: poll ÷ LISTEN ${(polled.p50 / woken.p50).toFixed(0)}×`)
  await channel.purgeQueue(queue)
  console.log('relay throughput, a backlog of committed rows to RabbitMQ with confirms')
  const one = await throughput(1)
  const four = await throughput(4)
  console.log(`  4 relays ÷ 1: ${(four / one).toFixed(2)}×`)
} finally {
  for (const broker of brokers) await broker.close()
  await outbox.pool.query(`DROP TABLE IF EXISTS ${table}; DROP FUNCTION IF EXISTS ${table}_notify()`)
  for (const pool of pools) await pool.end()
  await channel.deleteQueue(queue)
  await channel.deleteExchange(exchange)
  await admin.close()
}
