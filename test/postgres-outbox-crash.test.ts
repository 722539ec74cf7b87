// The outbox relay through crashes, against the real PostgreSQL and
// RabbitMQ: a relay process SIGKILLed mid-batch, and the broker connection
// cut mid-batch. Every row arrives; duplicates only from the batch in flight.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Type } from '@sinclair/typebox'
import t, { type Test } from 'tap'
import { AmqpMessageBroker } from '../src/amqp/index.js'
import { NotificationEvent } from '../src/index.js'
import { OutboxRelay } from '../src/postgres/index.js'
import { AmqpProxy } from './fixtures/amqp-proxy.js'
import { observer, RABBIT_URL, uniqueName } from './fixtures/amqp-rabbit.js'
import { rowsOf, seedRows, testOutbox } from './fixtures/postgres.js'
import { eventually } from './fixtures/sse-client.js'

class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({ orderId: Type.String() })) {}

t.setTimeout(120_000)

/** Message ids as RabbitMQ delivers them from a queue bound to `exchange`, in arrival order. */
async function consumeIds (t: Test, exchange: string, at?: { count: number, then: () => void }): Promise<string[]> {
  const watch = await observer(t)
  const queue = await watch.boundQueue(exchange)
  const ids: string[] = []
  await watch.channel.consume(queue, (message) => {
    if (message === null) return
    ids.push(message.properties.messageId as string)
    // In the delivery's own callback: the batch it belongs to is still being confirmed.
    if (ids.length === at?.count) at.then()
  }, { noAck: true })
  return ids
}

async function allSent (t: Test, outbox: Awaited<ReturnType<typeof testOutbox>>): Promise<void> {
  let statuses = new Set<string>()
  for (let i = 0; i < 200; i++) {
    statuses = new Set([...(await rowsOf(outbox.pool, outbox.table)).values()].map((row) => row.status))
    if (statuses.size === 1 && statuses.has('sent')) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.same([...statuses], ['sent'], 'every row marked sent')
}

t.test('a relay process SIGKILLed mid-batch, then another relay: every row published, duplicates only from the killed batch, with the same messageIds', async (t) => {
  const outbox = await testOutbox(t)
  const exchange = uniqueName('outbox')
  let killed = false
  const kill = (): void => { killed = child.kill('SIGKILL') }
  // The third batch, published and confirmed, stalls before its mark: killed then.
  const ids = await consumeIds(t, exchange, { count: 600, then: kill })
  const events = Array.from({ length: 3000 }, (_, i) => new OrderShipped({ orderId: String(i) }))
  await seedRows(outbox, events)
  const batchSize = 200
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/relay-process.ts', import.meta.url))], {
    env: { ...process.env, TABLE: outbox.table, EXCHANGE: exchange, BATCH: String(batchSize), STALL_AFTER: '500' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit')
  t.teardown(() => { child.kill('SIGKILL') })
  await eventually(() => killed, 'the child relay to publish 600 rows', 60_000)
  await exited
  // Messages the child published just before it died may still be on their way.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const beforeKill = ids.length
  const rows = await rowsOf(outbox.pool, outbox.table)
  const unmarked = ids.filter((id) => rows.get(id)!.status === 'pending').length
  t.ok(unmarked > 0, `killed mid-batch: ${unmarked} of the ${beforeKill} delivered messages are of rows not marked sent`)

  const broker = await AmqpMessageBroker.connect({ url: RABBIT_URL, exchange })
  t.teardown(() => broker.close())
  const relay = new OutboxRelay({ outbox, broker, batchSize })
  await relay.start()
  t.teardown(() => relay.stop())
  await eventually(() => new Set(ids).size === 3000, 'every row, from the second relay', 60_000)
  await allSent(t, outbox)
  const counts = new Map<string, number>()
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1)
  const twice = [...counts].filter(([, n]) => n > 1)
  t.ok(twice.every(([, n]) => n === 2), 'a duplicate is sent twice at most')
  t.ok(twice.length <= unmarked, `duplicates (${twice.length}) only of the rows delivered but not marked when it was killed (${unmarked})`)
  const known = new Set(events.map((event) => event.eventId))
  t.ok(ids.every((id) => known.has(id)), 'every message carries its event id')
  t.comment(`killed after ${beforeKill} deliveries; ${twice.length} rows sent twice`)
})

t.test('the RabbitMQ connection cut mid-batch: nothing lost, every row marked sent', async (t) => {
  const outbox = await testOutbox(t)
  const exchange = uniqueName('outbox')
  const proxy = await AmqpProxy.start()
  // Mid-way through the fourth batch.
  const ids = await consumeIds(t, exchange, { count: 350, then: () => { proxy.cut() } })
  t.teardown(() => proxy.close())
  const broker = await AmqpMessageBroker.connect({ url: proxy.url, exchange, reconnectInitialDelayMs: 50, logger: { warn () {}, error () {} } })
  t.teardown(() => broker.close())
  const events = Array.from({ length: 2000 }, (_, i) => new OrderShipped({ orderId: String(i) }))
  const relay = new OutboxRelay({ outbox, broker, batchSize: 100, retryDelayMs: 50, logger: { warn () {}, error () {} } })
  await relay.start()
  t.teardown(() => relay.stop())
  await seedRows(outbox, events)
  await eventually(() => new Set(ids).size === 2000, 'every row, after the reconnect', 60_000)
  await allSent(t, outbox)
  t.comment(`${ids.length - 2000} re-sent after the cut; ${relay.stats.failed} failed sends retried`)
})
