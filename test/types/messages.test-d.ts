// Type tests of the message classes, handlers and maps (see expect.ts).
import { Type } from '@sinclair/typebox'
import {
  bootstrapStreaming, DomainEvent, EventHandler, NotificationEvent, Request, Response,
  StreamingRequestHandler, type DomainEventMessage, type RequestMessage, type StreamContext,
} from '../../src/index.js'
import { expectAssignable, expectExact, expectTrue, use, type Equal } from './expect.js'

class ProcessOrders extends Request(Type.Object({
  orderIds: Type.Array(Type.String()),
  priority: Type.Optional(Type.Integer()),
})) {
  get count (): number { return this.orderIds.length }
}
class OrderProcessed extends Response(Type.Object({ orderId: Type.String(), itemsCount: Type.Integer() })) {}
class OrderPaid extends DomainEvent(Type.Object({ orderId: Type.String(), amount: Type.Number() })) {}
class CustomerBlocked extends DomainEvent(Type.Object({ customerId: Type.Number() })) {}
class OrderShipped extends NotificationEvent('orders.shipped', Type.Object({ orderId: Type.String() })) {}

// Instances are typed by the schema; the constructor takes exactly its data.
const command = new ProcessOrders({ orderIds: ['a'] })
expectTrue<Equal<typeof command.orderIds, string[]>>()
expectTrue<Equal<typeof command.priority, number | undefined>>()
// @ts-expect-error (checks Equal itself) mutable and readonly arrays differ
expectTrue<Equal<typeof command.orderIds, readonly string[]>>()
expectAssignable<RequestMessage>(command)
// @ts-expect-error wrong field
use(new ProcessOrders({ wrong: 1 }))
// @ts-expect-error wrong field type
use(new ProcessOrders({ orderIds: [1] }))
// @ts-expect-error missing required field
use(new OrderProcessed({ orderId: 'a' }))
// @ts-expect-error a schema class needs its data
use(new OrderPaid())

// `X.parse(unknown)` gives an X, subclass members included.
const parsed = expectExact<ProcessOrders>()(ProcessOrders.parse(JSON.parse('{"orderIds":["a"]}')))
expectExact<number>()(parsed.count)
expectExact<OrderPaid>()(OrderPaid.parse({ orderId: 'a', amount: 1 }))
expectExact<OrderShipped>()(OrderShipped.parse({ orderId: 'a' }))
expectExact<OrderProcessed>()(OrderProcessed.parse({ orderId: 'a', itemsCount: 1 }))
// @ts-expect-error (checks expectExact itself) a parsed request is no response
expectExact<OrderProcessed>()(ProcessOrders.parse({ orderIds: [] }))

// The schema is the TypeBox schema itself, usable in route schemas.
expectTrue<Equal<typeof ProcessOrders.schema.properties.orderIds.type, 'array'>>()

// Events are frozen at run time and readonly in their type.
const paid = new OrderPaid({ orderId: 'a', amount: 1 })
expectTrue<Equal<typeof paid.amount, number>>()
// @ts-expect-error domain event fields are readonly
paid.amount = 2
const shipped = new OrderShipped({ orderId: 'a' }, { eventId: 'e-1' })
expectExact<string>()(shipped.topic)
expectExact<string>()(shipped.eventId)
expectExact<string>()(shipped.occurredAt)
expectExact<Readonly<Record<string, unknown>>>()(shipped.payload)
expectTrue<Equal<typeof OrderShipped.topic, string>>()
// @ts-expect-error the topic belongs to the class, not to one event
use(new OrderShipped({ orderId: 'a' }, { topic: 'other' }))

// A streaming handler: an async generator of its declared result type.
class ProcessOrdersHandler extends StreamingRequestHandler<ProcessOrders, OrderProcessed> {
  constructor (private readonly deps: { itemsOf: (id: string) => number }) { super() }
  async * handle (request: ProcessOrders, { signal, streamId }: StreamContext) {
    expectTrue<Equal<typeof signal, AbortSignal>>()
    expectTrue<Equal<typeof streamId, string>>()
    for (const orderId of request.orderIds) {
      this.emit(new OrderPaid({ orderId, amount: 1 }))
      this.emit(new OrderShipped({ orderId }))
      yield new OrderProcessed({ orderId, itemsCount: this.deps.itemsOf(orderId) })
    }
  }
}

// @ts-expect-error handle() is abstract: a handler must implement it
class HandlesNothing extends StreamingRequestHandler<ProcessOrders, OrderProcessed> {}

class YieldsTheWrongType extends StreamingRequestHandler<ProcessOrders, OrderProcessed> {
  // @ts-expect-error yields numbers, declared OrderProcessed
  async * handle () { yield 1 }
}

class HandlesAnotherRequest extends StreamingRequestHandler<ProcessOrders, OrderProcessed> {
  // @ts-expect-error handles a request of another shape
  async * handle (request: { invoiceId: number }) { yield new OrderProcessed({ orderId: String(request.invoiceId), itemsCount: 0 }) }
}

class EmitsNoEvent extends StreamingRequestHandler<ProcessOrders, OrderProcessed> {
  async * handle () {
    // @ts-expect-error emit() takes event instances, not plain data
    this.emit({ orderId: 'a', amount: 1 })
    // @ts-expect-error a response is no event, though it has the same toJSON()
    this.emit(new OrderProcessed({ orderId: 'a', itemsCount: 0 }))
    yield new OrderProcessed({ orderId: 'a', itemsCount: 0 })
  }
}

class OrderPaidHandler extends EventHandler<OrderPaid> {
  async handle (event: OrderPaid, { streamId }: StreamContext) {
    expectTrue<Equal<typeof event.orderId, string>>()
    expectTrue<Equal<typeof streamId, string>>()
    this.emit(new OrderShipped({ orderId: event.orderId }))
  }
}
class CustomerBlockedHandler extends EventHandler<CustomerBlocked> {
  handle (event: CustomerBlocked) { expectTrue<Equal<typeof event.customerId, number>>() }
}

// Maps: a handler must fit the class it is bound to.
const mediator = bootstrapStreaming({
  requests: (map) => map.bind(ProcessOrders, ProcessOrdersHandler),
  events: (map) => map
    .bind(OrderPaid, OrderPaidHandler)
    .bind(CustomerBlocked, CustomerBlockedHandler),
})
class Invoice extends Request(Type.Object({ invoiceId: Type.Number() })) {}
class InvoiceHandler extends StreamingRequestHandler<Invoice, number> {
  async * handle (request: Invoice) { yield request.invoiceId }
}
bootstrapStreaming({ requests: (map) => map.bind(Invoice, InvoiceHandler) })
bootstrapStreaming({
  // @ts-expect-error the handler serves another request class
  requests: (map) => map.bind(ProcessOrders, InvoiceHandler),
})
bootstrapStreaming({
  // @ts-expect-error a handler of CustomerBlocked bound to OrderPaid
  events: (map) => map.bind(OrderPaid, CustomerBlockedHandler),
})
bootstrapStreaming({
  // @ts-expect-error a request class is no domain event class
  events: (map) => map.bind(ProcessOrders, OrderPaidHandler),
})
// A handler needing more than the bound class gives is rejected too (method
// parameters alone would be checked bivariantly); one needing less fits.
class OrderNoted extends DomainEvent(Type.Object({ orderId: Type.String() })) {}
class OrderNotedHandler extends EventHandler<OrderNoted> {
  handle (event: OrderNoted) { use(event.orderId) }
}
bootstrapStreaming({ events: (map) => map.bind(OrderPaid, OrderNotedHandler) })
bootstrapStreaming({
  // @ts-expect-error OrderPaidHandler reads fields OrderNoted lacks
  events: (map) => map.bind(OrderNoted, OrderPaidHandler),
})
class ProcessOrder extends Request(Type.Object({ orderIds: Type.Array(Type.String()), dryRun: Type.Boolean() })) {}
class InvoiceWithNote extends Request(Type.Object({ invoiceId: Type.Number(), note: Type.String() })) {}
bootstrapStreaming({ requests: (map) => map.bind(InvoiceWithNote, InvoiceHandler) })
class ProcessOrderHandler extends StreamingRequestHandler<ProcessOrder, OrderProcessed> {
  async * handle (request: ProcessOrder) { if (!request.dryRun) yield new OrderProcessed({ orderId: 'a', itemsCount: 0 }) }
}
bootstrapStreaming({
  // @ts-expect-error ProcessOrderHandler reads fields ProcessOrders lacks
  requests: (map) => map.bind(ProcessOrders, ProcessOrderHandler),
})

// The mediator streams async iterables; the item type is the caller's to state.
const stream = mediator.stream<OrderProcessed>(command, { signal: AbortSignal.timeout(1000), streamId: 's-1' })
expectAssignable<AsyncIterable<OrderProcessed>>(stream)
expectAssignable<AsyncIterator<OrderProcessed>>(stream)
expectTrue<Equal<typeof stream.streamId, string>>()
expectAssignable<AsyncIterable<unknown>>(mediator.stream(command))
// @ts-expect-error plain data is no request instance
use(mediator.stream({ orderIds: ['a'] }))
// @ts-expect-error an event is no request, though it has the same toJSON()
use(mediator.stream(paid))

export async function consume (): Promise<number> {
  let items = 0
  for await (const result of stream) {
    expectTrue<Equal<typeof result, OrderProcessed>>()
    items += result.itemsCount
  }
  await mediator.close({ timeoutMs: 100 })
  return items
}

expectAssignable<DomainEventMessage>(paid)
export { HandlesNothing, YieldsTheWrongType, HandlesAnotherRequest, EmitsNoEvent }
