// AmqpMessageBroker: publish-with-confirm throughput against a real RabbitMQ.
//
//   node --import tsx bench/amqp.ts [--quick]        (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672)
//
// Each case sends N messages (~120 bytes of JSON each) through one broker,
// keeping K sends in flight (K = 1 is one send after the other), to a topic
// exchange with one durable queue bound, so every persistent message is
// written to disk before RabbitMQ confirms it. The queue is purged between
// runs and everything is deleted at the end. One more case publishes to an
// exchange with no queue bound (RabbitMQ routes the message nowhere and
// confirms at once): the ceiling of the client and the protocol. Printed:
// median msgs/s of 3 runs, and the slowest and fastest.
import { randomUUID } from 'node:crypto'
import { connect } from 'amqplib'
import { AmqpMessageBroker } from '../src/amqp/index.js'
import type { BrokerMessage } from '../src/index.js'
import { summarize } from './lib/stats.js'

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const quick = process.argv.includes('--quick')
const MESSAGES = quick ? 1000 : 10_000
const RUNS = 3
const suffix = randomUUID().slice(0, 8)
const exchange = `bench.amqp.${suffix}`
const queue = `bench.amqp.${suffix}`

function message (n: number): BrokerMessage {
  return {
    messageName: 'OrderShipped',
    messageId: randomUUID(),
    topic: 'orders.shipped',
    payload: { orderId: `order-${n}`, customerId: 'customer-42', totalAmount: 129.9, shippedAt: '2026-11-26T05:00:00.000Z' },
  }
}

/** Sends `total` messages with `inFlight` outstanding at any time; returns msgs/s. */
async function throughput (broker: AmqpMessageBroker, total: number, inFlight: number): Promise<number> {
  const messages = Array.from({ length: total }, (_, n) => message(n))
  let next = 0
  const sender = async (): Promise<void> => {
    while (next < total) await broker.send(messages[next++]!)
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: inFlight }, sender))
  return total / ((performance.now() - started) / 1000)
}

const admin = await connect(url)
const channel = await admin.createChannel()
await channel.assertExchange(exchange, 'topic', { durable: true })
await channel.assertQueue(queue, { durable: true })
await channel.bindQueue(queue, exchange, '#')
const unrouted = `${exchange}.unrouted`

const cases: Array<{ label: string, inFlight: number, noDelay?: boolean, to?: string }> = [
  { label: 'sequential (1 in flight)', inFlight: 1 },
  { label: '10 in flight', inFlight: 10 },
  { label: '100 in flight', inFlight: 100 },
  { label: '100 in flight, Nagle on (noDelay: false)', inFlight: 100, noDelay: false },
  { label: '1000 in flight', inFlight: 1000 },
  { label: '100 in flight, no queue bound (no disk)', inFlight: 100, to: unrouted },
]

console.log(`AmqpMessageBroker publish-with-confirm, ${MESSAGES} messages per run, ${RUNS} runs, durable queue bound (${url.replace(/:[^:@/]*@/, ':***@')})`)
try {
  for (const { label, inFlight, noDelay, to = exchange } of cases) {
    const socketOptions = noDelay === undefined ? {} : { noDelay }
    const broker = await AmqpMessageBroker.connect({ url, exchange: to, socketOptions, sendTimeoutMs: 60_000 })
    await throughput(broker, Math.min(MESSAGES, 500), inFlight) // warm-up
    const rates: number[] = []
    for (let run = 0; run < RUNS; run++) {
      await channel.purgeQueue(queue)
      rates.push(await throughput(broker, MESSAGES, inFlight))
    }
    await broker.close()
    const { median, min, max } = summarize(rates)
    console.log(`${label.padEnd(42)} ${Math.round(median).toString().padStart(7)} msgs/s  (${Math.round(min)}–${Math.round(max)})`)
  }
} finally {
  await channel.deleteQueue(queue)
  await channel.deleteExchange(exchange)
  await channel.deleteExchange(unrouted)
  await admin.close()
}
