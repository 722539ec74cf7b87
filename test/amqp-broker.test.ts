// AmqpMessageBroker against the real RabbitMQ at 127.0.0.1:5672. Outages
// are made by a TCP proxy in front of it (test/fixtures/amqp-proxy.ts) or by
// the server itself (rabbitmqctl close_connection); every exchange and queue
// has a unique name and is deleted at teardown.
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Type } from '@sinclair/typebox'
import { asValue, createContainer } from 'awilix'
import Fastify from 'fastify'
import t from 'tap'
import cqrsStream, {
  NotificationEvent, Request, StreamingRequestHandler, type BrokerMessage, type StreamContext,
} from '../src/index.js'
import {
  AmqpMessageBroker, BrokerRejectedError, BrokerUnavailableError, type AmqpMessageBrokerOptions,
} from '../src/amqp/index.js'
import { AmqpProxy } from './fixtures/amqp-proxy.js'
import {
  RABBIT_URL, closeConnectionNamed, delivered, observer, recordingLogger, takeAll, uniqueName,
} from './fixtures/amqp-rabbit.js'
import { eventually, listen, openSse, within } from './fixtures/sse-client.js'

const run = promisify(execFile)
const UNAVAILABLE = 'FST_ERR_CQRS_STREAM_BROKER_UNAVAILABLE'
const REJECTED = 'FST_ERR_CQRS_STREAM_BROKER_REJECTED'

interface Teardown { teardown (fn: () => unknown): void }

/** A connected broker on `exchange`, closed at teardown. */
async function brokerFor (t: Teardown, options: Partial<AmqpMessageBrokerOptions> & { exchange: string }): Promise<AmqpMessageBroker> {
  const broker = await AmqpMessageBroker.connect({ url: RABBIT_URL, logger: recordingLogger(), ...options })
  t.teardown(() => broker.close())
  return broker
}

/** A proxy in front of RabbitMQ, closed at teardown. */
async function proxyFor (t: Teardown): Promise<AmqpProxy> {
  const proxy = await AmqpProxy.start()
  t.teardown(() => proxy.close())
  return proxy
}

function message (n: number, topic = 'orders.shipped'): BrokerMessage {
  return {
    messageName: 'OrderShipped',
    messageId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    topic,
    payload: { orderId: `order-${n}` },
  }
}

/** What the queue holds for `sent`, published to `exchange`. */
function expected (exchange: string, sent: BrokerMessage): Record<string, unknown> {
  return {
    exchange,
    routingKey: sent.topic,
    messageId: sent.messageId,
    type: sent.messageName,
    contentType: 'application/json',
    deliveryMode: 2,
    body: sent.payload,
  }
}

/** Resolves once the async predicate holds (polled; a generous bound, not a timing assertion). */
async function until (predicate: () => Promise<boolean>, label: string, ms = 10_000): Promise<void> {
  await within((async () => { while (!(await predicate())) await sleep(10) })(), label, ms)
}

function rejection (promise: Promise<unknown>): Promise<Error & { code?: string, statusCode?: number, cause?: unknown }> {
  return promise.then(() => { throw new Error('expected a rejection') }, (error: unknown) => error as Error)
}

t.test('only src/amqp/ imports amqplib: the main entry does not need it', async (t) => {
  const files = (await readdir('src', { recursive: true })).filter((file) => file.endsWith('.ts'))
  const importers: string[] = []
  for (const file of files) {
    if (/from 'amqplib'|import\('amqplib'\)/.test(await readFile(join('src', file), 'utf8'))) importers.push(file.split('\\').join('/'))
  }
  t.ok(importers.length > 0, 'some file imports it')
  t.same(importers.filter((file) => !file.startsWith('amqp/')), [])
})

t.test('bad options reject with FST_ERR_CQRS_STREAM_INVALID_OPTION naming the option', async (t) => {
  const exchange = 'x'
  const url = RABBIT_URL
  const logger = recordingLogger()
  const cases: Array<[string, unknown]> = [
    ['options', undefined],
    ['options', 'amqp://localhost'],
    ['url', { exchange }],
    ['url', { url: 42, exchange }],
    ['url', { url: 'http://guest:secret@localhost', exchange }],
    ['url', { url: 'not a url, secret', exchange }],
    ['exchange', { url }],
    ['exchange', { url, exchange: '' }],
    ['exchange', { url, exchange: 'é'.repeat(128) }],
    ['socketOptions', { url, exchange, socketOptions: 'tls' }],
    ['socketOptions', { url, exchange, socketOptions: { recovery: true } }],
    ['logger', { url, exchange, logger: null }],
    ['logger', { url, exchange, logger: { warn: logger.warn } }],
    ['logger', { url, exchange, logger: { error: logger.error } }],
    ['logger', { url, exchange, logger: { warn: logger.warn, error: logger.error, info: 'yes' } }],
    ['connectTimeoutMs', { url, exchange, connectTimeoutMs: 0 }],
    ['connectTimeoutMs', { url, exchange, connectTimeoutMs: 1.5 }],
    ['connectTimeoutMs', { url, exchange, connectTimeoutMs: 2 ** 31 }],
    ['sendTimeoutMs', { url, exchange, sendTimeoutMs: '1000' }],
    ['reconnectInitialDelayMs', { url, exchange, reconnectInitialDelayMs: -1 }],
    ['reconnectMaxDelayMs', { url, exchange, reconnectInitialDelayMs: 1000, reconnectMaxDelayMs: 999 }],
  ]
  for (const [name, options] of cases) {
    const error = await rejection(AmqpMessageBroker.connect(options as AmqpMessageBrokerOptions))
    t.equal(error.code, 'FST_ERR_CQRS_STREAM_INVALID_OPTION', `${name}: ${JSON.stringify(options)}`)
    t.match(error.message, `option "${name}"`)
    t.notMatch(error.message, 'secret', 'no password in the message')
  }
  const timeout = await rejection(AmqpMessageBroker.connect({ url, exchange, sendTimeoutMs: 1.5 }))
  t.equal(timeout.message, 'fastify-cqrs-stream: option "sendTimeoutMs" must be an integer of milliseconds from 1 to 2147483647, got 1.5.')
  const recovery = await rejection(AmqpMessageBroker.connect({ url, exchange, socketOptions: { recovery: true } as object }))
  t.equal(recovery.message, 'fastify-cqrs-stream: option "socketOptions" must be an object of amqplib socket options, ' +
    'without recovery (the broker reconnects by itself).')
  const http = await rejection(AmqpMessageBroker.connect({ url: 'http://guest:secret@localhost', exchange }))
  t.match(http.message, 'got "http://guest:***@localhost/"')
  const garbled = await rejection(AmqpMessageBroker.connect({ url: 'not a url, secret', exchange }))
  t.match(garbled.message, 'got "(an unparsable URL)"')
  t.same(logger.entries, [])
})

t.test('RabbitMQ unreachable at boot: connect rejects with BROKER_UNAVAILABLE, quickly, without the password', async (t) => {
  const error = await within(rejection(AmqpMessageBroker.connect({
    url: 'amqp://guest:secret@127.0.0.1:1/orders?heartbeat=5', exchange: 'x', connectTimeoutMs: 60_000,
  })), 'connect to a closed port')
  t.equal(error.code, UNAVAILABLE)
  t.equal(error.statusCode, 503)
  t.ok(error instanceof BrokerUnavailableError)
  t.equal(error.message,
    'fastify-cqrs-stream: the message broker at amqp://guest:***@127.0.0.1:1/orders cannot take messages: cannot connect (connect ECONNREFUSED 127.0.0.1:1).')
  t.match(error.cause, { code: 'ECONNREFUSED' })

  // The object form is described the same way, password left out.
  const object = await rejection(AmqpMessageBroker.connect({
    url: { hostname: '127.0.0.1', port: 1, username: 'app', password: 'secret', vhost: 'orders' }, exchange: 'x',
  }))
  t.equal(object.code, UNAVAILABLE)
  t.match(object.message, 'at amqp://app@127.0.0.1:1/orders cannot')
  const tls = await rejection(AmqpMessageBroker.connect({ url: { protocol: 'amqps', hostname: '127.0.0.1' }, exchange: 'x' }))
  t.match(tls.message, 'at amqps://guest@127.0.0.1:5671/ cannot', 'amqps: port 5671 by default')
  const defaults = await rejection(AmqpMessageBroker.connect({ url: { port: 1 }, exchange: 'x' }))
  t.match(defaults.message, 'at amqp://guest@localhost:1/ cannot')
})

t.test('a port that accepts and stays silent: connect rejects at connectTimeoutMs and the socket is closed', async (t) => {
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket)).resume()
  })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => { for (const socket of sockets) socket.destroy(); silent.close(resolve) }))
  const { port } = silent.address() as AddressInfo
  const error = await within(rejection(AmqpMessageBroker.connect({ url: `amqp://127.0.0.1:${port}`, exchange: 'x', connectTimeoutMs: 200 })), 'connect')
  t.equal(error.code, UNAVAILABLE)
  t.equal(error.message, `fastify-cqrs-stream: the message broker at amqp://127.0.0.1:${port} cannot take messages: no connection within connectTimeoutMs (200 ms).`)
  await eventually(() => sockets.size === 0, 'amqplib to close the silent socket')
})

t.test('a slow broker: the connection that opens after connectTimeoutMs is closed at once', async (t) => {
  const proxy = await proxyFor(t)
  const { channel, deleteLater } = await observer(t)
  const exchange = uniqueName('slow')
  deleteLater(exchange)
  // Each hop 30 ms late: the handshake, channel and exchange (11 hops) take
  // longer than 200 ms. amqplib's own socket timeout is set apart, so the
  // late connection does open.
  proxy.mode.delayMs = 30
  const error = await rejection(AmqpMessageBroker.connect({ url: proxy.url, exchange, connectTimeoutMs: 200, socketOptions: { timeout: 10_000 } }))
  t.equal(error.code, UNAVAILABLE)
  t.match(error.message, 'no connection within connectTimeoutMs (200 ms)')
  t.equal(proxy.accepted, 1)
  await eventually(() => proxy.open === 0, 'the late connection to be closed')
  await channel.checkExchange(exchange)
  t.pass('the late connection had opened and asserted the exchange before it was closed')
})

t.test('an existing exchange of another type: connect rejects with BROKER_UNAVAILABLE and closes its connection', async (t) => {
  const proxy = await proxyFor(t)
  const { channel, deleteLater } = await observer(t)
  const exchange = uniqueName('direct')
  await channel.assertExchange(exchange, 'direct', { durable: true })
  deleteLater(exchange)
  const error = await rejection(AmqpMessageBroker.connect({ url: proxy.url, exchange }))
  t.equal(error.code, UNAVAILABLE)
  t.match(error.message, /cannot connect \(.*PRECONDITION_FAILED - inequivalent arg 'type'/)
  t.match(error.cause, { code: 406 })
  await eventually(() => proxy.open === 0, 'the connection to be closed')
})

t.test('send publishes to a durable topic exchange: routing key, persistent, messageId, type, JSON payload', async (t) => {
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('exchange')
  const queue = await boundQueue(exchange)
  const logger = recordingLogger()
  const broker = await brokerFor(t, { url: { hostname: '127.0.0.1', username: 'guest', password: 'guest' }, exchange, logger })
  t.equal(broker.exchange, exchange)
  t.equal(broker.connected, true)

  const sent = [message(1), message(2, 'orders.cancelled'), { ...message(3), payload: { orderId: 'c', lines: [{ sku: 'x', qty: 2 }], note: null } }]
  for (const one of sent) t.equal(await broker.send(one), undefined, 'resolves to undefined once confirmed')
  t.same((await takeAll(channel, queue)).map(delivered), sent.map((one) => expected(exchange, one)))

  const { stdout } = await run('rabbitmqctl', ['list_exchanges', 'name', 'type', 'durable', '--quiet', '--no-table-headers'])
  t.ok(stdout.split('\n').includes(`${exchange}\ttopic\ttrue`), 'a durable topic exchange')
  t.same(logger.entries, [])
})

// A stream whose handler emits notification events, through the plugin.

class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({ orderId: Type.String() })) {}
class OrderCancelled extends NotificationEvent('orders.cancelled', Type.Object({ orderId: Type.String(), reason: Type.String() })) {}
class ShipOrders extends Request(Type.Object({ orderIds: Type.Array(Type.String()) })) {}

/** Called before each item is handed on; a test may cut the broker there. */
type Gate = (index: number) => Promise<void>

class ShipOrdersHandler extends StreamingRequestHandler<ShipOrders, { orderId: string }> {
  constructor (private readonly deps: { gate: Gate }) { super() }
  async * handle (command: ShipOrders) {
    let index = 0
    for (const orderId of command.orderIds) {
      this.emit(new OrderShipped({ orderId }, { eventId: eventId(orderId, 1) }))
      if (orderId.endsWith('x')) this.emit(new OrderCancelled({ orderId, reason: 'late' }, { eventId: eventId(orderId, 2) }))
      await this.deps.gate(index++)
      yield { orderId }
    }
  }
}

function eventId (orderId: string, kind: number): string {
  return `00000000-0000-4000-8000-${kind}${orderId.padStart(11, '0')}`
}

function shipped (exchange: string, orderId: string): Record<string, unknown> {
  return expected(exchange, { messageName: 'OrderShipped', messageId: eventId(orderId, 1), topic: 'orders.shipped', payload: { orderId } })
}

function cancelled (exchange: string, orderId: string): Record<string, unknown> {
  return expected(exchange, {
    messageName: 'OrderCancelled', messageId: eventId(orderId, 2), topic: 'orders.cancelled', payload: { orderId, reason: 'late' },
  })
}

async function shipOrdersApp (t: Teardown, broker: AmqpMessageBroker, gate: Gate = async () => {}) {
  const failures: unknown[] = []
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(cqrsStream, {
    container: createContainer({ strict: true }).register({ gate: asValue(gate) }),
    requests: (map) => map.bind(ShipOrders, ShipOrdersHandler),
    messageBroker: broker,
    onEventHandlerError: (error) => { failures.push(error) },
    heartbeatMs: 0,
  })
  app.streamRoute({ method: 'POST', url: '/ship', request: ShipOrders })
  return { app, failures }
}

function frameTypes (body: string): string[] {
  return body.split('\n').filter((line) => line.startsWith('data: ')).map((line) => (JSON.parse(line.slice(6)) as { type: string }).type)
}

t.test('the events of a real stream reach bound queues exactly once each, by routing key', async (t) => {
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('stream')
  const all = await boundQueue(exchange, 'orders.#')
  const cancellations = await boundQueue(exchange, 'orders.cancelled')
  const broker = await brokerFor(t, { exchange })
  const { app, failures } = await shipOrdersApp(t, broker)

  const res = await app.inject({ method: 'POST', url: '/ship', payload: { orderIds: ['1', '2x', '3', '4x'] } })
  t.equal(res.statusCode, 200)
  t.same(frameTypes(res.body), ['start', 'progress', 'progress', 'progress', 'progress', 'complete'])
  t.same((await takeAll(channel, all)).map(delivered), [
    shipped(exchange, '1'), shipped(exchange, '2x'), cancelled(exchange, '2x'), shipped(exchange, '3'), shipped(exchange, '4x'), cancelled(exchange, '4x'),
  ])
  t.same((await takeAll(channel, cancellations)).map(delivered), [cancelled(exchange, '2x'), cancelled(exchange, '4x')])
  t.same(failures, [])
})

t.test('the connection closed by the server mid-stream: the stream completes, every event is in the queue once', async (t) => {
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('killed')
  const queue = await boundQueue(exchange)
  const logger = recordingLogger()
  const connectionName = uniqueName('connection')
  const broker = await brokerFor(t, {
    exchange, logger, reconnectInitialDelayMs: 20, socketOptions: { clientProperties: { connection_name: connectionName } },
  })
  // Before item 2 is handed on (its events are dispatched after the gate),
  // RabbitMQ closes the broker's connection, and only that one.
  const { app, failures } = await shipOrdersApp(t, broker, async (index) => {
    if (index === 2) await closeConnectionNamed(connectionName)
  })
  const orderIds = ['1', '2', '3x', '4', '5', '6']
  const res = await app.inject({ method: 'POST', url: '/ship', payload: { orderIds } })
  t.same(frameTypes(res.body), ['start', ...orderIds.map(() => 'progress'), 'complete'])
  t.same((await takeAll(channel, queue)).map(delivered), [
    shipped(exchange, '1'), shipped(exchange, '2'), shipped(exchange, '3x'), cancelled(exchange, '3x'),
    shipped(exchange, '4'), shipped(exchange, '5'), shipped(exchange, '6'),
  ])
  t.same(failures, [])
  t.equal(broker.connected, true)
  t.match(logger.entries, [
    ['warn', { err: { code: 320, message: /CONNECTION_FORCED - closed by a test/ }, broker: 'amqp://guest:***@127.0.0.1:5672' },
      'fastify-cqrs-stream: lost the AMQP connection; reconnecting'],
    ['info', { attempt: 1 }, 'fastify-cqrs-stream: reconnected to the AMQP broker'],
  ])
  t.equal(logger.entries.length, 2)
})

t.test('taken by the broker but unconfirmed when the connection dropped: published again, same messageId (at-least-once)', async (t) => {
  const proxy = await proxyFor(t)
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('redeliver')
  const queue = await boundQueue(exchange)
  const logger = recordingLogger()
  const broker = await brokerFor(t, { url: proxy.url, exchange, logger, reconnectInitialDelayMs: 20 })

  // RabbitMQ gets the message and confirms it; the confirm is held back.
  proxy.mode.holdDownstream = true
  let resolved = 0
  const sending = broker.send(message(1)).then(() => { resolved++ })
  await until(async () => (await channel.checkQueue(queue)).messageCount === 1, 'the broker to enqueue it')
  t.equal(resolved, 0, 'not confirmed yet')
  proxy.cut()
  proxy.resume()
  await within(sending, 'the send after the reconnect')
  t.equal(resolved, 1)
  const copies = await takeAll(channel, queue)
  t.same(copies.map(delivered), [expected(exchange, message(1)), expected(exchange, message(1))], 'twice, with the same messageId')
  t.match(logger.entries, [
    ['warn', { err: { message: /Unexpected close|ECONNRESET|socket/i } }, 'fastify-cqrs-stream: lost the AMQP connection; reconnecting'],
    ['info', { attempt: 1 }, 'fastify-cqrs-stream: reconnected to the AMQP broker'],
  ])
})

t.test('an ack read in one chunk with the close frame: the send made on that ack goes out on the next connection', async (t) => {
  const proxy = await proxyFor(t)
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('same-chunk')
  const queue = await boundQueue(exchange)
  const logger = recordingLogger()
  const connectionName = uniqueName('connection')
  const broker = await brokerFor(t, {
    url: proxy.url, exchange, logger, reconnectInitialDelayMs: 10, socketOptions: { clientProperties: { connection_name: connectionName } },
  })
  // The ack of message 1 and the server's close frame are held, then read
  // together: the code awaiting message 1 sends message 2 after amqplib has
  // closed the channel, before the broker has handled the loss.
  proxy.mode.holdDownstream = true
  const both = broker.send(message(1)).then(() => broker.send(message(2)))
  await until(async () => (await channel.checkQueue(queue)).messageCount === 1, 'the broker to take message 1')
  await closeConnectionNamed(connectionName)
  proxy.resume()
  await within(both, 'message 2 after the reconnect')
  t.same((await takeAll(channel, queue)).map(delivered), [expected(exchange, message(1)), expected(exchange, message(2))])
  t.match(logger.entries, [
    ['warn', { err: { code: 320 } }, 'fastify-cqrs-stream: lost the AMQP connection; reconnecting'],
    ['info', { attempt: 1 }, 'fastify-cqrs-stream: reconnected to the AMQP broker'],
  ])
})

t.test('without a logger, losses go to console.warn and channel errors to console.error', async (t) => {
  const proxy = await proxyFor(t)
  const { channel, deleteLater } = await observer(t)
  const exchange = uniqueName('console')
  deleteLater(exchange)
  const warned = t.capture(console, 'warn')
  const failed = t.capture(console, 'error')
  const broker = await AmqpMessageBroker.connect({ url: proxy.url, exchange, reconnectInitialDelayMs: 10 })
  t.teardown(() => broker.close())
  await channel.deleteExchange(exchange)
  await within(broker.send(message(1)), 'the send after the channel was reopened')
  proxy.cut()
  await eventually(() => !broker.connected, 'the loss')
  await eventually(() => broker.connected, 'the reconnect')
  t.match(failed(), [{ args: ['fastify-cqrs-stream: the AMQP broker closed the channel; reconnecting', { err: { code: 404 }, exchange }] }])
  t.match(warned(), [{ args: ['fastify-cqrs-stream: lost the AMQP connection; reconnecting', { broker: proxy.url.replace(':guest@', ':***@') }] }])
})

t.test('a send during an outage fails with BROKER_UNAVAILABLE at sendTimeoutMs and is never published later', async (t) => {
  const proxy = await proxyFor(t)
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('outage')
  const queue = await boundQueue(exchange)
  const logger = recordingLogger()
  const broker = await brokerFor(t, { url: proxy.url, exchange, logger, sendTimeoutMs: 300, reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 40 })

  proxy.mode.refuse = true
  proxy.cut()
  await eventually(() => !broker.connected, 'the loss to be seen')
  const error = await within(rejection(broker.send(message(1))), 'the send to time out')
  t.equal(error.code, UNAVAILABLE)
  t.equal(error.statusCode, 503)
  t.equal(error.message, `fastify-cqrs-stream: the message broker at ${proxy.url.replace(':guest@', ':***@')} cannot take messages: ` +
    'no connection within sendTimeoutMs (300 ms); the message was not published.')
  await eventually(() => logger.entries.filter(([, , text]) => text.includes('reconnecting to the AMQP broker failed')).length >= 2, 'failed attempts')
  t.match(logger.entries[1], ['warn', { err: { code: UNAVAILABLE }, attempt: 1 }, 'fastify-cqrs-stream: reconnecting to the AMQP broker failed'])
  t.match(logger.entries[2], ['warn', { attempt: 2 }])

  proxy.mode.refuse = false
  await eventually(() => broker.connected, 'the reconnect')
  await broker.send(message(2))
  t.same((await takeAll(channel, queue)).map(delivered), [expected(exchange, message(2))], 'the timed-out message never went out')
})

t.test('a send the broker does not confirm within sendTimeoutMs fails with BROKER_UNAVAILABLE and is not published again', async (t) => {
  const proxy = await proxyFor(t)
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('unconfirmed')
  const queue = await boundQueue(exchange)
  const broker = await brokerFor(t, { url: proxy.url, exchange, sendTimeoutMs: 300, reconnectInitialDelayMs: 10 })

  proxy.mode.holdUpstream = true
  proxy.mode.holdDownstream = true
  const error = await within(rejection(broker.send(message(1))), 'the send to time out')
  t.equal(error.code, UNAVAILABLE)
  t.match(error.message, 'cannot take messages: no confirm within sendTimeoutMs (300 ms); the message may still be delivered.')
  proxy.cut()
  proxy.resume()
  await eventually(() => broker.connected, 'the reconnect')
  await broker.send(message(2))
  t.same((await takeAll(channel, queue)).map(delivered), [expected(exchange, message(2))], 'the timed-out message was not published again')
})

t.test('a nack rejects with BROKER_REJECTED; the broker goes on', async (t) => {
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('nack')
  const queue = await boundQueue(exchange, '#', { maxLength: 1, overflow: 'reject-publish' })
  const logger = recordingLogger()
  const broker = await brokerFor(t, { exchange, logger })
  await broker.send(message(1))
  const error = await rejection(broker.send(message(2)))
  t.equal(error.code, REJECTED)
  t.equal(error.statusCode, 502)
  t.ok(error instanceof BrokerRejectedError)
  t.equal(error.message, `fastify-cqrs-stream: message ${message(2).messageId} was not delivered: the broker nacked it ` +
    '(e.g. a full queue with x-overflow reject-publish). The event handler failure policy decides what happens to the stream.')
  t.match(error.cause, { message: 'message nacked' })
  t.equal(broker.connected, true)
  t.same((await takeAll(channel, queue)).map(delivered), [expected(exchange, message(1))])
  await broker.send(message(3))
  t.same(logger.entries, [])
})

t.test('a message that cannot be encoded rejects with BROKER_REJECTED; the channel stays open', async (t) => {
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('encode')
  const queue = await boundQueue(exchange)
  const logger = recordingLogger()
  const broker = await brokerFor(t, { exchange, logger })
  const longTopic = await rejection(broker.send(message(1, 'orders.'.repeat(40))))
  t.equal(longTopic.code, REJECTED)
  t.match(longTopic.message, "it cannot be published (Field 'routingKey' is the wrong type; must be a string (up to 255 chars))")
  const bigint = await rejection(broker.send({ ...message(2), payload: { total: 10n } }))
  t.equal(bigint.code, REJECTED)
  t.match(bigint.message, /it cannot be published \(Do not know how to serialize a BigInt\)/)
  t.match(bigint.cause, TypeError)
  await broker.send(message(3))
  t.same((await takeAll(channel, queue)).map(delivered), [expected(exchange, message(3))])
  t.equal(broker.connected, true)
  t.same(logger.entries, [])
})

t.test('a channel the broker closes (exchange deleted): reopened, the exchange asserted again, the message published', async (t) => {
  const { channel, deleteLater } = await observer(t)
  const exchange = uniqueName('deleted')
  deleteLater(exchange)
  const logger = recordingLogger()
  const broker = await brokerFor(t, { exchange, logger, reconnectInitialDelayMs: 10 })
  await channel.deleteExchange(exchange)
  await within(broker.send(message(1)), 'the send after the channel was reopened')
  await channel.checkExchange(exchange)
  t.pass('the exchange exists again')
  t.match(logger.entries, [
    ['error', { err: { code: 404, message: /NOT_FOUND - no exchange/ }, exchange }, 'fastify-cqrs-stream: the AMQP broker closed the channel; reconnecting'],
    ['info', { attempt: 1 }, 'fastify-cqrs-stream: reconnected to the AMQP broker'],
  ])
  t.equal(logger.entries.length, 2)
})

t.test('a logger without info: reconnects are not logged', async (t) => {
  const proxy = await proxyFor(t)
  const { deleteLater } = await observer(t)
  const { entries, warn, error } = recordingLogger()
  const broker = await brokerFor(t, { url: proxy.url, exchange: uniqueName('quiet'), logger: { warn, error }, reconnectInitialDelayMs: 10 })
  deleteLater(broker.exchange)
  proxy.cut()
  await eventually(() => !broker.connected, 'the loss')
  await eventually(() => broker.connected, 'the reconnect')
  t.same(entries.map(([level]) => level), ['warn'])
})

t.test('close() waits for pending confirms, then closes; later sends reject with BROKER_UNAVAILABLE', async (t) => {
  const proxy = await proxyFor(t)
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('drain')
  const queue = await boundQueue(exchange)
  const broker = await AmqpMessageBroker.connect({ url: proxy.url, exchange, logger: recordingLogger() })
  const order: string[] = []
  const sends = Array.from({ length: 200 }, (_, n) => broker.send(message(n)).then(() => { order.push('confirmed') }))
  const closing = broker.close()
  t.equal(broker.close(), closing, 'one close, however often called')
  await closing
  order.push('closed')
  t.same(order, [...sends.map(() => 'confirmed'), 'closed'], 'every send confirmed before close() resolved')
  t.equal(broker.connected, false)
  await eventually(() => proxy.open === 0, 'the connection to be closed')
  t.equal((await takeAll(channel, queue)).length, 200)

  const late = await rejection(broker.send(message(1)))
  t.equal(late.code, UNAVAILABLE)
  t.match(late.message, 'cannot take messages: the AmqpMessageBroker was closed.')
})

t.test('close() during an outage waits for the waiting sends: published once the broker is back', async (t) => {
  const proxy = await proxyFor(t)
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('drain-outage')
  const queue = await boundQueue(exchange)
  const broker = await AmqpMessageBroker.connect({ url: proxy.url, exchange, logger: recordingLogger(), reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 20 })
  proxy.mode.refuse = true
  proxy.cut()
  await eventually(() => !broker.connected, 'the loss')
  const sending = broker.send(message(1))
  let closed = false
  const closing = broker.close().then(() => { closed = true })
  await sleep(100)
  t.equal(closed, false, 'close() waits for the send')
  proxy.mode.refuse = false
  await within(sending, 'the send')
  await within(closing, 'close()')
  t.same((await takeAll(channel, queue)).map(delivered), [expected(exchange, message(1))])
  await eventually(() => proxy.open === 0, 'the connection to be closed')
})

t.test('close() during an outage with nothing pending stops reconnecting at once', async (t) => {
  const proxy = await proxyFor(t)
  const { deleteLater } = await observer(t)
  const broker = await AmqpMessageBroker.connect({
    url: proxy.url, exchange: uniqueName('stop'), logger: recordingLogger(), reconnectInitialDelayMs: 60_000, reconnectMaxDelayMs: 60_000,
  })
  deleteLater(broker.exchange)
  proxy.cut()
  await eventually(() => !broker.connected, 'the loss')
  await within(broker.close(), 'close() in the middle of a 30 to 60 s backoff')
  t.equal(proxy.accepted, 1, 'no reconnect attempt')
})

t.test('close() while a reconnect attempt hangs: resolves when the attempt gives up', async (t) => {
  const proxy = await proxyFor(t)
  const { deleteLater } = await observer(t)
  const logger = recordingLogger()
  const broker = await AmqpMessageBroker.connect({
    url: proxy.url, exchange: uniqueName('hang'), logger, reconnectInitialDelayMs: 1, connectTimeoutMs: 300,
  })
  deleteLater(broker.exchange)
  proxy.mode.holdDownstream = true
  proxy.cut()
  await eventually(() => proxy.accepted === 2, 'the reconnect attempt')
  await within(broker.close(), 'close()')
  t.equal(broker.connected, false)
  t.match(logger.entries.at(-1), ['warn', { err: { code: UNAVAILABLE, message: /connectTimeoutMs \(300 ms\)/ }, attempt: 1 }])
  t.equal(proxy.accepted, 2, 'no further attempt')
})

t.test('in an onClose hook, broker.close() runs after the plugin ended its streams, and their events were all confirmed', async (t) => {
  const { channel, boundQueue } = await observer(t)
  const exchange = uniqueName('shutdown')
  const queue = await boundQueue(exchange)
  const broker = await AmqpMessageBroker.connect({ url: RABBIT_URL, exchange, logger: recordingLogger() })
  const order: string[] = []
  const failures: unknown[] = []
  class TickHandler extends StreamingRequestHandler<ShipOrders, { n: number }> {
    async * handle (_command: ShipOrders, { signal }: StreamContext) {
      try {
        for (let n = 0; ; n++) {
          this.emit(new OrderShipped({ orderId: String(n) }, { eventId: eventId(String(n), 1) }))
          yield { n }
          await sleep(20, undefined, { signal }).catch(() => {})
        }
      } finally {
        order.push('handler ended')
      }
    }
  }
  const app = Fastify()
  // preClose hooks run in registration order: one added before the plugin
  // runs while the streams are still open. onClose hooks all run after the
  // plugin's preClose hook, wherever they were added.
  app.addHook('preClose', async () => { order.push(`preClose before the plugin: ${app.mediator.openStreams} open stream(s)`) })
  app.addHook('onClose', async () => { order.push(`onClose before the plugin: ${app.mediator.openStreams} open stream(s)`) })
  await app.register(cqrsStream, {
    requests: (map) => map.bind(ShipOrders, TickHandler),
    messageBroker: broker,
    onEventHandlerError: (error) => { failures.push(error) },
    heartbeatMs: 0,
  })
  app.addHook('onClose', async () => {
    order.push(`onClose: ${app.mediator.openStreams} open stream(s)`)
    await broker.close()
    order.push('broker closed')
  })
  app.streamRoute({ method: 'POST', url: '/ticks', request: ShipOrders })
  const port = await listen(app)
  const client = await openSse(port, '/ticks', { method: 'POST', body: '{"orderIds":[]}' })
  await client.until(() => client.parser.frames.length >= 4, 'three progress frames')
  await app.close()
  t.same(order, [
    'preClose before the plugin: 1 open stream(s)',
    'handler ended',
    'onClose: 0 open stream(s)',
    'broker closed',
    // onClose hooks run last-registered first, all after every preClose hook.
    'onClose before the plugin: 0 open stream(s)',
  ])
  t.same(failures, [], 'no send failed: the broker was open until the streams ended')
  const progress = client.parser.frames.filter((frame) => frame.data.includes('"progress"')).length
  const messages = await takeAll(channel, queue)
  t.ok(messages.length >= progress, 'every item handed on had its event confirmed first')
  t.same(messages.map(delivered), messages.map((_, n) => shipped(exchange, String(n))))
})
