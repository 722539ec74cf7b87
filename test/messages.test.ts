import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Type, type TObject } from '@sinclair/typebox'
import {
  DomainEvent, DomainEventMessage, NotificationEvent, NotificationEventMessage,
  Request, RequestMessage, Response, ResponseMessage, type MessageClass,
} from '../src/index.js'

const INVALID_MESSAGE = 'FST_ERR_CQRS_STREAM_INVALID_MESSAGE'
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const orderSchema = Type.Object({
  orderId: Type.String(),
  quantity: Type.Integer({ minimum: 1 }),
  placedAt: Type.String({ format: 'date-time' }),
})

class PlaceOrderCommand extends Request(orderSchema) {}
class OrderPlacedResult extends Response(orderSchema) {}
class OrderPlacedEvent extends DomainEvent(orderSchema) {}
class OrderShipped extends NotificationEvent('orders.shipped', orderSchema) {}

const data = { orderId: 'o-1', quantity: 2, placedAt: '2024-05-01T10:00:00Z' }

/** Invalid values for `orderSchema`, each with what makes it invalid. */
const invalid: Array<[string, unknown]> = [
  ['wrong type of a field', { ...data, quantity: '2' }],
  ['non-integer number', { ...data, quantity: 1.5 }],
  ['below the minimum', { ...data, quantity: 0 }],
  ['missing field', { orderId: 'o-1', quantity: 2 }],
  ['bad date-time', { ...data, placedAt: 'yesterday' }],
  ['date-time without a time zone', { ...data, placedAt: '2024-05-01T10:00:00' }],
  ['a date is not a date-time', { ...data, placedAt: '2024-05-01' }],
  ['null', null],
  ['undefined', undefined],
  ['a string', 'o-1'],
  ['a number', 42],
  ['an array', [data]],
]

const factories: Array<[string, MessageClass<typeof orderSchema> & (new (data: never) => object), abstract new (...args: never[]) => object]> = [
  ['Request', PlaceOrderCommand, RequestMessage],
  ['Response', OrderPlacedResult, ResponseMessage],
  ['DomainEvent', OrderPlacedEvent, DomainEventMessage],
  ['NotificationEvent', OrderShipped, NotificationEventMessage],
]

function assertInvalid (t: Test, fn: () => unknown, message: string): void {
  try {
    fn()
    t.fail(`${message}: expected FST_ERR_CQRS_STREAM_INVALID_MESSAGE`)
  } catch (error) {
    t.ok(error instanceof Error, `${message}: an Error`)
    t.match(error, { code: INVALID_MESSAGE, statusCode: 400 }, message)
  }
}

for (const [kind, MessageType, Base] of factories) {
  t.test(`${kind}(): schema, parse, validation errors`, async (t) => {
    t.equal(MessageType.schema, orderSchema, 'static schema is the schema given')

    const parsed = MessageType.parse({ ...data })
    t.ok(parsed instanceof MessageType, 'parse builds the subclass')
    t.ok(parsed instanceof Base, `parse result is a ${Base.name}`)
    t.same(
      Object.fromEntries(Object.keys(data).map((key) => [key, (parsed as Record<string, unknown>)[key]])),
      data,
      'parsed instance carries the fields'
    )

    for (const [why, value] of invalid) {
      assertInvalid(t, () => MessageType.parse(value), `${kind}.parse rejects ${why}`)
    }
  })
}

t.test('Request: instances carry the fields; toJSON is plain data', async (t) => {
  const command = new PlaceOrderCommand(data)
  t.ok(command instanceof PlaceOrderCommand)
  t.ok(command instanceof RequestMessage)
  t.equal(command.orderId, 'o-1')
  t.equal(command.quantity, 2)
  t.equal(command.placedAt, '2024-05-01T10:00:00Z')

  const json = command.toJSON()
  t.strictSame(json, data, 'toJSON is exactly the data')
  t.equal(Object.getPrototypeOf(json), Object.prototype, 'toJSON is a plain object')
  t.notOk(json instanceof PlaceOrderCommand)
  t.strictSame(JSON.parse(JSON.stringify(command)), data, 'JSON round trip gives the data')

  json.orderId = 'changed'
  t.equal(command.orderId, 'o-1', 'toJSON returns a copy')
})

t.test('Response: instances carry the fields; toJSON is plain data', async (t) => {
  const result = new OrderPlacedResult(data)
  t.ok(result instanceof ResponseMessage)
  t.equal(result.orderId, 'o-1')
  const json = result.toJSON()
  t.strictSame(json, data)
  t.equal(Object.getPrototypeOf(json), Object.prototype)
  t.strictSame(JSON.parse(JSON.stringify(result)), data)
})

t.test('parse of a subclass of a subclass builds the most derived class', async (t) => {
  class UrgentPlaceOrderCommand extends PlaceOrderCommand {
    get urgent (): boolean { return true }
  }
  const command = UrgentPlaceOrderCommand.parse(data)
  t.ok(command instanceof UrgentPlaceOrderCommand)
  t.equal((command as UrgentPlaceOrderCommand).urgent, true)
  assertInvalid(t, () => UrgentPlaceOrderCommand.parse({}), 'still validates against the inherited schema')
})

t.test('parse keeps nested data and does not coerce types', async (t) => {
  class TagCommand extends Request(Type.Object({
    tags: Type.Array(Type.String(), { minItems: 1 }),
    meta: Type.Object({ source: Type.String() }),
    enabled: Type.Boolean(),
  })) {}
  const command = TagCommand.parse({ tags: ['a', 'b'], meta: { source: 'web' }, enabled: false })
  t.strictSame(command.toJSON(), { tags: ['a', 'b'], meta: { source: 'web' }, enabled: false })
  assertInvalid(t, () => TagCommand.parse({ tags: [], meta: { source: 'web' }, enabled: false }), 'minItems')
  assertInvalid(t, () => TagCommand.parse({ tags: ['a'], meta: {}, enabled: false }), 'nested missing field')
  assertInvalid(t, () => TagCommand.parse({ tags: ['a'], meta: { source: 'web' }, enabled: 'false' }), 'no coercion of "false"')
  assertInvalid(t, () => TagCommand.parse({ tags: 'a', meta: { source: 'web' }, enabled: false }), 'no coercion to array')
})

t.test('formats: date-time, email and uuid as Fastify validates them', async (t) => {
  const schema = Type.Object({
    at: Type.String({ format: 'date-time' }),
    email: Type.String({ format: 'email' }),
    id: Type.String({ format: 'uuid' }),
  })
  class ContactCommand extends Request(schema) {}
  const good = { at: '2024-05-01T10:00:00.123+02:00', email: 'ada@example.com', id: '3f1c2a4e-9b7d-4c1e-8f00-0123456789ab' }

  const cases: Array<[string, Record<string, string>]> = [
    ['all valid', good],
    ['date-time in UTC', { ...good, at: '2024-05-01T10:00:00Z' }],
    ['lower-case t and z', { ...good, at: '2024-05-01t10:00:00z' }],
    ['date-time without zone', { ...good, at: '2024-05-01T10:00:00' }],
    ['date only', { ...good, at: '2024-05-01' }],
    ['impossible date', { ...good, at: '2024-02-30T10:00:00Z' }],
    ['free text date', { ...good, at: 'May 1st' }],
    ['email with plus', { ...good, email: 'ada+orders@mail.example.org' }],
    ['email without domain', { ...good, email: 'ada@' }],
    ['email without at', { ...good, email: 'ada.example.com' }],
    ['upper-case uuid', { ...good, id: '3F1C2A4E-9B7D-4C1E-8F00-0123456789AB' }],
    ['urn uuid', { ...good, id: 'urn:uuid:3f1c2a4e-9b7d-4c1e-8f00-0123456789ab' }],
    ['short uuid', { ...good, id: '3f1c2a4e-9b7d-4c1e-8f00' }],
    ['uuid with bad characters', { ...good, id: 'zf1c2a4e-9b7d-4c1e-8f00-0123456789ab' }],
  ]

  // The reference: a Fastify route with the same schema as its body.
  const app = Fastify()
  t.teardown(() => app.close())
  app.post('/contact', { schema: { body: schema } }, async () => ({ ok: true }))
  await app.ready()

  const expected: Record<string, boolean> = {
    'all valid': true,
    'date-time in UTC': true,
    'lower-case t and z': true,
    'date-time without zone': false,
    'date only': false,
    'impossible date': false,
    'free text date': false,
    'email with plus': true,
    'email without domain': false,
    'email without at': false,
    'upper-case uuid': true,
    'urn uuid': true,
    'short uuid': false,
    'uuid with bad characters': false,
  }

  for (const [name, value] of cases) {
    const response = await app.inject({ method: 'POST', url: '/contact', payload: value })
    const fastifyAccepts = response.statusCode === 200
    t.equal(fastifyAccepts, expected[name], `Fastify: ${name}`)
    if (expected[name]) {
      const command = ContactCommand.parse(value)
      t.strictSame(command.toJSON(), value, `parse accepts ${name}`)
    } else {
      t.equal(response.statusCode, 400, `Fastify rejects ${name}`)
      assertInvalid(t, () => ContactCommand.parse(value), `parse rejects ${name}`)
    }
  }
})

t.test('the validator is compiled per schema object', async (t) => {
  const a = Type.Object({ n: Type.Number() })
  const b = Type.Object({ n: Type.String() })
  class A extends Request(a) {}
  class B extends Request(b) {}
  t.equal(A.parse({ n: 1 }).n, 1)
  t.equal(B.parse({ n: 'x' }).n, 'x')
  assertInvalid(t, () => A.parse({ n: 'x' }), 'A keeps its own validator')
  assertInvalid(t, () => B.parse({ n: 1 }), 'B keeps its own validator')
  // Twice through the cached validator.
  t.equal(A.parse({ n: 2 }).n, 2)
  assertInvalid(t, () => A.parse({ n: 'y' }), 'cached validator still rejects')
})

t.test('the error names the class and where the data is wrong', async (t) => {
  try {
    PlaceOrderCommand.parse({ ...data, quantity: 'two' })
    t.fail('should throw')
  } catch (error) {
    t.match(error, { code: INVALID_MESSAGE, statusCode: 400, name: 'FastifyError' })
    t.match((error as Error).message, /PlaceOrderCommand/)
    t.match((error as Error).message, /\/quantity/)
  }
  try {
    PlaceOrderCommand.parse('nope')
    t.fail('should throw')
  } catch (error) {
    t.match(error, { code: INVALID_MESSAGE })
    t.match((error as Error).message, /value/)
  }
})

t.test('DomainEvent: frozen instances with plain toJSON', async (t) => {
  const event = new OrderPlacedEvent(data)
  t.ok(event instanceof DomainEventMessage)
  t.equal(event.orderId, 'o-1')
  t.ok(Object.isFrozen(event), 'frozen')
  t.throws(() => { (event as { orderId: string }).orderId = 'x' }, TypeError, 'assigning a field throws')
  t.throws(() => { (event as unknown as Record<string, unknown>).extra = 1 }, TypeError, 'adding a field throws')
  t.throws(() => { delete (event as unknown as Record<string, unknown>).orderId }, TypeError, 'deleting a field throws')
  t.equal(event.orderId, 'o-1', 'unchanged')

  const json = event.toJSON()
  t.strictSame(json, data)
  t.equal(Object.getPrototypeOf(json), Object.prototype)
  t.notOk(Object.isFrozen(json), 'toJSON gives a fresh plain object')
  t.strictSame(JSON.parse(JSON.stringify(event)), data)

  const parsed = OrderPlacedEvent.parse(data)
  t.ok(parsed instanceof OrderPlacedEvent)
  t.ok(Object.isFrozen(parsed), 'parsed events are frozen too')
})

t.test('NotificationEvent: topic, eventId, occurredAt, payload', async (t) => {
  t.equal(OrderShipped.topic, 'orders.shipped', 'static topic')

  const before = Date.now()
  const event = new OrderShipped(data)
  const after = Date.now()
  t.ok(event instanceof OrderShipped)
  t.ok(event instanceof NotificationEventMessage)
  t.equal(event.topic, 'orders.shipped', 'instance topic')
  t.match(event.eventId, UUID, 'eventId is a v4 uuid')
  t.equal(typeof event.occurredAt, 'string')
  t.equal(new Date(event.occurredAt).toISOString(), event.occurredAt, 'occurredAt is an ISO string')
  const at = Date.parse(event.occurredAt)
  t.ok(at >= before && at <= after, 'occurredAt is the creation time')
  t.equal(event.orderId, 'o-1', 'fields on the instance')
  t.strictSame(event.payload, data, 'payload is the schema fields only')
  t.equal(event.payload, event.payload, 'payload is stable')

  const other = new OrderShipped(data)
  t.not(other.eventId, event.eventId, 'eventId is unique per instance')
  const ids = new Set(Array.from({ length: 50 }, () => new OrderShipped(data).eventId))
  t.equal(ids.size, 50)

  t.strictSame(event.toJSON(), {
    topic: 'orders.shipped', eventId: event.eventId, occurredAt: event.occurredAt, ...data,
  }, 'toJSON is meta + fields')
  t.equal(Object.getPrototypeOf(event.toJSON()), Object.prototype)
  t.strictSame(JSON.parse(JSON.stringify(event)), event.toJSON(), 'JSON round trip')
})

t.test('NotificationEvent: meta can be given', async (t) => {
  const eventId = '00000000-0000-4000-8000-000000000001'
  const occurredAt = '2020-01-02T03:04:05.000Z'
  const event = new OrderShipped(data, { eventId, occurredAt })
  t.equal(event.eventId, eventId)
  t.equal(event.occurredAt, occurredAt)
  t.equal(event.topic, 'orders.shipped')
  t.strictSame(event.toJSON(), { topic: 'orders.shipped', eventId, occurredAt, ...data })

  const onlyId = new OrderShipped(data, { eventId })
  t.equal(onlyId.eventId, eventId)
  t.match(onlyId.occurredAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
  const onlyTime = new OrderShipped(data, { occurredAt })
  t.match(onlyTime.eventId, UUID)
  t.equal(onlyTime.occurredAt, occurredAt)
  const explicitUndefined = new OrderShipped(data, { eventId: undefined })
  t.match(explicitUndefined.eventId, UUID)
})

t.test('NotificationEvent: frozen, meta cannot change', async (t) => {
  const event = new OrderShipped(data)
  const { eventId } = event
  t.ok(Object.isFrozen(event))
  t.throws(() => { (event as { orderId: string }).orderId = 'x' }, TypeError)
  t.throws(() => { (event as { eventId: string }).eventId = 'x' }, TypeError)
  t.throws(() => { (event as { topic: string }).topic = 'x' }, TypeError)
  t.throws(() => { (event as { occurredAt: string }).occurredAt = 'x' }, TypeError)
  t.equal(event.eventId, eventId)
  t.equal(event.topic, 'orders.shipped')
  t.ok(Object.isFrozen(event.payload), 'payload is frozen too')
  t.throws(() => { (event.payload as { orderId: string }).orderId = 'x' }, TypeError)
  t.strictSame(event.payload, data)
  t.strictSame(event.toJSON(), { topic: 'orders.shipped', eventId, occurredAt: event.occurredAt, ...data })
})

t.test('NotificationEvent: payload is a copy of the data given', async (t) => {
  const given = { ...data }
  const event = new OrderShipped(given)
  given.orderId = 'changed'
  t.equal(event.orderId, 'o-1')
  t.equal(event.payload.orderId, 'o-1')
  t.not(event.payload, given)
})

t.test('NotificationEvent: parse gives fresh meta; topics are per class', async (t) => {
  const parsed = OrderShipped.parse(data)
  t.ok(parsed instanceof OrderShipped)
  t.equal(parsed.topic, 'orders.shipped')
  t.match(parsed.eventId, UUID)
  t.strictSame(parsed.payload, data)

  class OrderCancelled extends NotificationEvent('orders.cancelled', Type.Object({ orderId: Type.String() })) {}
  t.equal(OrderCancelled.topic, 'orders.cancelled')
  t.equal(new OrderCancelled({ orderId: 'a' }).topic, 'orders.cancelled')
  t.equal(OrderShipped.topic, 'orders.shipped', 'other classes keep their topic')
  t.strictSame(new OrderCancelled({ orderId: 'a' }).payload, { orderId: 'a' })
})

t.test('message kinds are distinct', async (t) => {
  const schema: TObject = Type.Object({})
  class R extends Request(schema) {}
  class E extends DomainEvent(schema) {}
  class N extends NotificationEvent('n', schema) {}
  t.notOk(new R({}) instanceof DomainEventMessage)
  t.notOk(new E({}) instanceof NotificationEventMessage)
  t.notOk(new N({}) instanceof DomainEventMessage)
  t.notOk(new E({}) instanceof RequestMessage)
})
