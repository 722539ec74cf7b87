import t, { type Test } from 'tap'
import { Type } from '@sinclair/typebox'
import {
  DomainEvent, EventHandler, EventMap, NotificationEvent, Request, RequestMap, Response,
  StreamingRequestHandler, type Event, type EventHandlerClass,
} from '../src/index.js'

const INVALID_BINDING = 'FST_ERR_CQRS_STREAM_INVALID_BINDING'
const DUPLICATE_HANDLER = 'FST_ERR_CQRS_STREAM_DUPLICATE_HANDLER'
const NO_HANDLER = 'FST_ERR_CQRS_STREAM_NO_HANDLER'

class ShipOrderCommand extends Request(Type.Object({ orderId: Type.String() })) {}
class CancelOrderCommand extends Request(Type.Object({ orderId: Type.String() })) {}
class ShipResult extends Response(Type.Object({ orderId: Type.String() })) {}
class OrderShippedEvent extends DomainEvent(Type.Object({ orderId: Type.String() })) {}
class OrderCancelledEvent extends DomainEvent(Type.Object({ orderId: Type.String() })) {}
class OrderShippedNotification extends NotificationEvent('orders.shipped', Type.Object({ orderId: Type.String() })) {}

class ShipOrderHandler extends StreamingRequestHandler<ShipOrderCommand, ShipResult> {
  async * handle (command: ShipOrderCommand): AsyncGenerator<ShipResult> {
    yield new ShipResult({ orderId: command.orderId })
  }
}
class OtherShipOrderHandler extends ShipOrderHandler {}
class CancelOrderHandler extends StreamingRequestHandler<CancelOrderCommand> {
  async * handle (): AsyncGenerator<never> {}
}

class AuditHandler extends EventHandler<OrderShippedEvent> {
  handle (): void {}
}
class MailHandler extends EventHandler<OrderShippedEvent> {
  async handle (): Promise<void> {}
}
class MetricsHandler extends EventHandler {
  handle (): void {}
}

/** Runs `fn` and asserts it throws a coded Fastify error. */
function assertCode (t: Test, fn: () => unknown, code: string, message: string): void {
  try {
    fn()
    t.fail(`${message}: expected ${code}`)
  } catch (error) {
    t.ok(error instanceof Error, `${message}: an Error`)
    t.equal((error as { code?: unknown }).code, code, message)
    t.equal((error as { statusCode?: unknown }).statusCode, 500, `${message}: status 500`)
  }
}

// --- EventCollector ----------------------------------------------------------

const collectors: Array<[string, () => StreamingRequestHandler | EventHandler]> = [
  ['StreamingRequestHandler', () => new ShipOrderHandler()],
  ['EventHandler', () => new AuditHandler()],
]

for (const [kind, make] of collectors) {
  t.test(`${kind}: emit, events, clearEvents, takeEvents`, async (t) => {
    const handler = make()
    t.strictSame(handler.events, [], 'starts empty')
    t.equal(handler.takeEvents(), undefined, 'takeEvents is undefined when empty')

    const first = new OrderShippedEvent({ orderId: 'a' })
    const second = new OrderShippedNotification({ orderId: 'b' })
    const third = new OrderCancelledEvent({ orderId: 'c' })
    handler.emit(first)
    handler.emit(second)
    t.equal(handler.events.length, 2)
    t.equal(handler.events[0], first, 'in emit order')
    t.equal(handler.events[1], second)

    const copy = handler.events
    t.not(copy, handler.events, 'each read is a new array')
    ;(copy as Event[]).push(third)
    ;(copy as Event[]).splice(0, 1)
    t.equal(handler.events.length, 2, 'mutating the copy does not affect the handler')
    t.equal(handler.events[0], first)

    handler.clearEvents()
    t.strictSame(handler.events, [], 'clearEvents empties')
    t.equal(handler.takeEvents(), undefined)

    handler.emit(first)
    handler.emit(third)
    handler.emit(first)
    const taken = handler.takeEvents()
    t.ok(Array.isArray(taken))
    t.equal(taken?.length, 3, 'the same event may be emitted twice')
    t.equal(taken?.[0], first)
    t.equal(taken?.[1], third)
    t.equal(taken?.[2], first)
    t.strictSame(handler.events, [], 'takeEvents empties')
    t.equal(handler.takeEvents(), undefined, 'a second take is undefined')

    handler.emit(second)
    t.equal(taken?.length, 3, 'events emitted after a take do not land in the taken array')
    t.equal(handler.takeEvents()?.[0], second)
  })

  t.test(`${kind}: emit rejects what is not an event`, async (t) => {
    const handler = make()
    const notEvents: Array<[string, unknown]> = [
      ['a request', new ShipOrderCommand({ orderId: 'a' })],
      ['a response', new ShipResult({ orderId: 'a' })],
      ['a plain object', { orderId: 'a' }],
      ['an event class', OrderShippedEvent],
      ['null', null],
      ['undefined', undefined],
      ['a string', 'OrderShipped'],
    ]
    for (const [why, value] of notEvents) {
      assertCode(t, () => handler.emit(value as Event), INVALID_BINDING, `emit(${why})`)
    }
    t.strictSame(handler.events, [], 'nothing was queued')
  })
}

t.test('each handler instance has its own events', async (t) => {
  const a = new AuditHandler()
  const b = new AuditHandler()
  a.emit(new OrderShippedEvent({ orderId: 'a' }))
  t.equal(a.events.length, 1)
  t.equal(b.events.length, 0)
  t.equal(b.takeEvents(), undefined)
})

// --- RequestMap ----------------------------------------------------------------

t.test('RequestMap: bind, get, require, has, entries', async (t) => {
  const map = new RequestMap()
  t.equal(map.get(ShipOrderCommand), undefined)
  t.equal(map.has(ShipOrderCommand), false)
  t.strictSame([...map.entries()], [])

  const returned = map.bind(ShipOrderCommand, ShipOrderHandler)
  t.equal(returned, map, 'bind returns the map')
  t.equal(map.bind(CancelOrderCommand, CancelOrderHandler), map, 'chainable')

  t.equal(map.get(ShipOrderCommand), ShipOrderHandler)
  t.equal(map.get(CancelOrderCommand), CancelOrderHandler)
  t.equal(map.require(ShipOrderCommand), ShipOrderHandler)
  t.equal(map.has(ShipOrderCommand), true)
  t.equal(map.has(CancelOrderCommand), true)
  t.same([...map.entries()], [[ShipOrderCommand, ShipOrderHandler], [CancelOrderCommand, CancelOrderHandler]],
    'entries in binding order')
  const entries = [...map.entries()]
  t.equal(entries[0]?.[0], ShipOrderCommand)
  t.equal(entries[0]?.[1], ShipOrderHandler)
  t.equal(entries[1]?.[0], CancelOrderCommand)
  t.equal(entries[1]?.[1], CancelOrderHandler)
})

t.test('RequestMap: chained binds in one expression', async (t) => {
  const map = new RequestMap()
    .bind(ShipOrderCommand, ShipOrderHandler)
    .bind(CancelOrderCommand, CancelOrderHandler)
  t.equal(map.require(CancelOrderCommand), CancelOrderHandler)
})

t.test('RequestMap: the lookup is by exact class', async (t) => {
  class ExpressShipOrderCommand extends ShipOrderCommand {}
  const map = new RequestMap().bind(ShipOrderCommand, ShipOrderHandler)
  t.equal(map.get(ExpressShipOrderCommand), undefined, 'a subclass is not bound by its parent')
  t.equal(map.has(ExpressShipOrderCommand), false)
  map.bind(ExpressShipOrderCommand, OtherShipOrderHandler)
  t.equal(map.get(ExpressShipOrderCommand), OtherShipOrderHandler, 'a subclass can have its own handler')
  t.equal(map.get(ShipOrderCommand), ShipOrderHandler)
})

t.test('RequestMap: a second binding throws DUPLICATE_HANDLER and keeps the first', async (t) => {
  const map = new RequestMap().bind(ShipOrderCommand, ShipOrderHandler)
  assertCode(t, () => map.bind(ShipOrderCommand, OtherShipOrderHandler), DUPLICATE_HANDLER, 'other handler')
  assertCode(t, () => map.bind(ShipOrderCommand, ShipOrderHandler), DUPLICATE_HANDLER, 'same handler again')
  t.equal(map.get(ShipOrderCommand), ShipOrderHandler, 'the first binding stays')
  t.equal([...map.entries()].length, 1)
  t.throws(() => map.bind(ShipOrderCommand, OtherShipOrderHandler), { message: /ShipOrderCommand.*OtherShipOrderHandler/ },
    'names the request and the new handler')
})

t.test('RequestMap: require on an unbound request throws NO_HANDLER', async (t) => {
  const map = new RequestMap().bind(ShipOrderCommand, ShipOrderHandler)
  assertCode(t, () => map.require(CancelOrderCommand), NO_HANDLER, 'unbound request')
  assertCode(t, () => new RequestMap().require(ShipOrderCommand), NO_HANDLER, 'empty map')
  t.throws(() => map.require(CancelOrderCommand), { message: /CancelOrderCommand/ }, 'names the request')
})

t.test('RequestMap: invalid bindings throw INVALID_BINDING', async (t) => {
  const map = new RequestMap()
  type Bind = (request: unknown, handler: unknown) => unknown
  const bind = map.bind.bind(map) as unknown as Bind
  class PlainClass {}
  const cases: Array<[string, unknown, unknown]> = [
    ['a domain event class as request', OrderShippedEvent, ShipOrderHandler],
    ['a notification class as request', OrderShippedNotification, ShipOrderHandler],
    ['a response class as request', ShipResult, ShipOrderHandler],
    ['a plain class as request', PlainClass, ShipOrderHandler],
    ['a request instance as request', new ShipOrderCommand({ orderId: 'a' }), ShipOrderHandler],
    ['null as request', null, ShipOrderHandler],
    ['a string as request', 'ShipOrderCommand', ShipOrderHandler],
    ['an event handler as handler', ShipOrderCommand, AuditHandler],
    ['a plain class as handler', ShipOrderCommand, PlainClass],
    ['a handler instance as handler', ShipOrderCommand, new ShipOrderHandler()],
    ['an arrow function as handler', ShipOrderCommand, () => new ShipOrderHandler()],
    ['StreamingRequestHandler itself', ShipOrderCommand, StreamingRequestHandler],
    ['undefined as handler', ShipOrderCommand, undefined],
  ]
  for (const [why, request, handler] of cases) {
    assertCode(t, () => bind(request, handler), INVALID_BINDING, why)
  }
  t.strictSame([...map.entries()], [], 'nothing was bound')
  t.equal(map.bind(ShipOrderCommand, ShipOrderHandler), map, 'a valid binding still works afterwards')
})

// --- EventMap ------------------------------------------------------------------

t.test('EventMap: many handlers per event, in binding order', async (t) => {
  const map = new EventMap()
  t.equal(map.bind(OrderShippedEvent, AuditHandler), map, 'bind returns the map')
  t.equal(map.bind(OrderShippedEvent, MailHandler), map)
  map.bind(OrderCancelledEvent, MetricsHandler)
  map.bind(OrderShippedEvent, MetricsHandler)

  t.strictSame(map.get(OrderShippedEvent), [AuditHandler, MailHandler, MetricsHandler])
  t.strictSame(map.get(OrderCancelledEvent), [MetricsHandler])
  const entries = [...map.entries()]
  t.equal(entries.length, 2)
  t.equal(entries[0]?.[0], OrderShippedEvent, 'entries in binding order')
  t.strictSame(entries[0]?.[1], [AuditHandler, MailHandler, MetricsHandler])
  t.equal(entries[1]?.[0], OrderCancelledEvent)
  t.strictSame(entries[1]?.[1], [MetricsHandler])
})

t.test('EventMap: binding the same pair twice is a no-op', async (t) => {
  const map = new EventMap()
    .bind(OrderShippedEvent, AuditHandler)
    .bind(OrderShippedEvent, MailHandler)
    .bind(OrderShippedEvent, AuditHandler)
  t.strictSame(map.get(OrderShippedEvent), [AuditHandler, MailHandler], 'no duplicate, order kept')
  t.equal(map.bind(OrderShippedEvent, MailHandler), map, 'still returns the map')
  t.strictSame(map.get(OrderShippedEvent), [AuditHandler, MailHandler])
})

t.test('EventMap: get on an unbound event is an empty frozen array', async (t) => {
  const map = new EventMap().bind(OrderShippedEvent, AuditHandler)
  const none = map.get(OrderCancelledEvent)
  t.strictSame(none, [])
  t.ok(Object.isFrozen(none), 'frozen')
  t.throws(() => { (none as EventHandlerClass[]).push(AuditHandler) }, TypeError)
  t.strictSame(new EventMap().get(OrderCancelledEvent), [], 'nothing leaked into the shared empty array')
  t.strictSame(map.get(class Unrelated {}), [])
})

t.test('EventMap: the lookup is by exact class', async (t) => {
  class ExpressShippedEvent extends OrderShippedEvent {}
  const map = new EventMap()
    .bind(OrderShippedEvent, AuditHandler)
    .bind(ExpressShippedEvent, MailHandler)
  t.strictSame(map.get(OrderShippedEvent), [AuditHandler])
  t.strictSame(map.get(ExpressShippedEvent), [MailHandler], 'a subclass gets its own handlers only')
})

t.test('EventMap: invalid bindings throw INVALID_BINDING', async (t) => {
  const map = new EventMap()
  type Bind = (event: unknown, handler: unknown) => unknown
  const bind = map.bind.bind(map) as unknown as Bind
  class PlainClass {}
  const cases: Array<[string, unknown, unknown]> = [
    ['a notification event class', OrderShippedNotification, AuditHandler],
    ['a request class', ShipOrderCommand, AuditHandler],
    ['a response class', ShipResult, AuditHandler],
    ['a plain class', PlainClass, AuditHandler],
    ['an event instance', new OrderShippedEvent({ orderId: 'a' }), AuditHandler],
    ['null as event', null, AuditHandler],
    ['a string as event', 'OrderShippedEvent', AuditHandler],
    ['a streaming handler as handler', OrderShippedEvent, ShipOrderHandler],
    ['a plain class as handler', OrderShippedEvent, PlainClass],
    ['a handler instance as handler', OrderShippedEvent, new AuditHandler()],
    ['EventHandler itself', OrderShippedEvent, EventHandler],
    ['a function as handler', OrderShippedEvent, () => undefined],
    ['null as handler', OrderShippedEvent, null],
  ]
  for (const [why, event, handler] of cases) {
    assertCode(t, () => bind(event, handler), INVALID_BINDING, why)
  }
  t.strictSame([...map.entries()], [], 'nothing was bound')
  t.strictSame(map.get(OrderShippedEvent), [])
})
