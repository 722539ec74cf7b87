import t from 'tap'
import { Type } from '@sinclair/typebox'
import {
  DevNullMessageBroker, InMemoryMessageBroker, NotificationEvent, Request, StreamingRequestHandler,
  bootstrapStreaming, type BrokerMessage, type MediatorLogger, type MessageBroker,
} from '../src/index.js'

const first: BrokerMessage = {
  messageName: 'OrderShipped', messageId: '00000000-0000-4000-8000-000000000001', topic: 'orders.shipped', payload: { orderId: 'a' },
}
const second: BrokerMessage = {
  messageName: 'OrderCancelled', messageId: '00000000-0000-4000-8000-000000000002', topic: 'orders.cancelled', payload: { orderId: 'b' },
}
const third: BrokerMessage = {
  messageName: 'OrderShipped', messageId: '00000000-0000-4000-8000-000000000003', topic: 'orders.shipped', payload: { orderId: 'c' },
}

t.test('DevNullMessageBroker resolves and keeps nothing', async (t) => {
  const broker: MessageBroker = new DevNullMessageBroker()
  const sent = broker.send(first)
  t.ok(sent instanceof Promise, 'send returns a promise')
  t.equal(await sent, undefined, 'resolves to undefined')
  t.equal(await broker.send(second), undefined)
  t.strictSame(Object.keys(broker), [], 'no state')
})

t.test('InMemoryMessageBroker keeps messages in order', async (t) => {
  const broker = new InMemoryMessageBroker()
  t.strictSame(broker.messages, [], 'starts empty')
  t.equal(await broker.send(first), undefined, 'send resolves to undefined')
  await broker.send(second)
  await broker.send(third)
  t.equal(broker.messages.length, 3)
  t.equal(broker.messages[0], first, 'the very message sent')
  t.equal(broker.messages[1], second)
  t.equal(broker.messages[2], third)
  t.strictSame(broker.messages.filter((m) => m.topic === 'orders.shipped').map((m) => m.payload), [{ orderId: 'a' }, { orderId: 'c' }])
})

t.test('InMemoryMessageBroker keeps the order of concurrent sends', async (t) => {
  const broker = new InMemoryMessageBroker()
  await Promise.all([broker.send(first), broker.send(second), broker.send(third)])
  t.strictSame(broker.messages.map((m) => m.messageId), [first.messageId, second.messageId, third.messageId])
})

t.test('InMemoryMessageBroker.clear forgets every message', async (t) => {
  const broker = new InMemoryMessageBroker()
  await broker.send(first)
  await broker.send(second)
  const seen = broker.messages
  t.equal(broker.clear(), undefined)
  t.strictSame(broker.messages, [], 'empty after clear')
  t.equal(broker.messages, seen, 'the same array, emptied in place')
  await broker.send(third)
  t.strictSame(broker.messages, [third], 'collects again after clear')
  broker.clear()
  broker.clear()
  t.strictSame(broker.messages, [], 'clearing an empty broker is fine')
})

t.test('separate InMemoryMessageBroker instances do not share messages', async (t) => {
  const a = new InMemoryMessageBroker()
  const b = new InMemoryMessageBroker()
  await a.send(first)
  t.equal(a.messages.length, 1)
  t.equal(b.messages.length, 0)
})

// Through the mediator: what a notification event looks like at the broker.

class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({ orderId: Type.String() })) {}
class OrderCancelled extends NotificationEvent('orders.cancelled', Type.Object({ orderId: Type.String(), reason: Type.String() })) {}
/** A logger that keeps what it is given, so a test can assert nothing failed. */
function recordingLogger (): MediatorLogger & { entries: Array<[string, object, string]> } {
  const entries: Array<[string, object, string]> = []
  return {
    entries,
    error: (object, message) => { entries.push(['error', object, message]) },
    warn: (object, message) => { entries.push(['warn', object, message]) },
  }
}

class ShipOrdersCommand extends Request(Type.Object({ orderIds: Type.Array(Type.String()) })) {}

class ShipOrdersHandler extends StreamingRequestHandler<ShipOrdersCommand, string> {
  async * handle (command: ShipOrdersCommand): AsyncGenerator<string> {
    for (const orderId of command.orderIds) {
      this.emit(new OrderShipped({ orderId }, { eventId: `00000000-0000-4000-8000-00000000000${orderId}` }))
      if (orderId === '2') this.emit(new OrderCancelled({ orderId, reason: 'late' }))
      yield orderId
    }
  }
}

for (const concurrentEventHandling of [false, true]) {
  t.test(`notification events reach InMemoryMessageBroker in emit order (concurrent: ${concurrentEventHandling})`, async (t) => {
    const broker = new InMemoryMessageBroker()
    const logger = recordingLogger()
    const mediator = bootstrapStreaming({
      requests: (map) => map.bind(ShipOrdersCommand, ShipOrdersHandler),
      messageBroker: broker,
      concurrentEventHandling,
      logger,
    })
    t.teardown(() => mediator.close())

    const seenAtYield: number[] = []
    const results: string[] = []
    for await (const result of mediator.stream<string>(new ShipOrdersCommand({ orderIds: ['1', '2', '3'] }))) {
      results.push(result)
      seenAtYield.push(broker.messages.length)
    }
    t.strictSame(results, ['1', '2', '3'])
    t.strictSame(seenAtYield, [1, 3, 4], 'each item is handed on after its events reached the broker')

    const cancelled = broker.messages[2]
    t.match(cancelled?.messageId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    t.strictSame(broker.messages, [
      { messageName: 'OrderShipped', messageId: '00000000-0000-4000-8000-000000000001', topic: 'orders.shipped', payload: { orderId: '1' } },
      { messageName: 'OrderShipped', messageId: '00000000-0000-4000-8000-000000000002', topic: 'orders.shipped', payload: { orderId: '2' } },
      { messageName: 'OrderCancelled', messageId: cancelled?.messageId, topic: 'orders.cancelled', payload: { orderId: '2', reason: 'late' } },
      { messageName: 'OrderShipped', messageId: '00000000-0000-4000-8000-000000000003', topic: 'orders.shipped', payload: { orderId: '3' } },
    ])
    t.ok(Object.isFrozen(broker.messages[0]?.payload), 'the payload the broker gets cannot change the event')
    t.strictSame(logger.entries, [], 'nothing failed')
  })
}

t.test('the default broker is DevNull: notification events are dropped without error', async (t) => {
  const logger = recordingLogger()
  const mediator = bootstrapStreaming({
    requests: (map) => map.bind(ShipOrdersCommand, ShipOrdersHandler),
    logger,
  })
  t.teardown(() => mediator.close())
  const results: string[] = []
  for await (const result of mediator.stream<string>(new ShipOrdersCommand({ orderIds: ['1', '2'] }))) results.push(result)
  t.strictSame(results, ['1', '2'])
  t.strictSame(logger.entries, [], 'no failed send was logged')
})

t.test('a rejecting broker is reported as a failed send, not a failed stream', async (t) => {
  const failure = new Error('broker down')
  const broker: MessageBroker = { send: async () => { throw failure } }
  const logger = recordingLogger()
  const mediator = bootstrapStreaming({
    requests: (map) => map.bind(ShipOrdersCommand, ShipOrdersHandler),
    messageBroker: broker,
    logger,
  })
  t.teardown(() => mediator.close())
  const results: string[] = []
  for await (const result of mediator.stream<string>(new ShipOrdersCommand({ orderIds: ['1'] }))) results.push(result)
  t.strictSame(results, ['1'])
  t.equal(logger.entries.length, 1)
  t.equal(logger.entries[0]?.[0], 'error')
  t.match(logger.entries[0]?.[1], { err: failure, eventName: 'OrderShipped', handlerName: 'messageBroker' })
})
