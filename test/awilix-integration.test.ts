import { fastifyAwilixPlugin } from '@fastify/awilix'
import { Type } from '@sinclair/typebox'
import { asClass, asValue, createContainer } from 'awilix'
import Fastify from 'fastify'
import t from 'tap'
import cqrsStream, { Request, Response, StreamingRequestHandler, type StreamContext } from '../src/index.js'
import { complete, listen, openStream, progress, sseText, start, streamIdOf, within } from './fixtures/app-sse.js'
import {
  OrderProcessedResult, OrderService, ProcessOrdersCommand, ProcessOrdersHandler, resultOf,
} from './fixtures/orders-domain.js'

/** A per-stream resource: registered scoped, with a disposer. */
class Connection {
  closed = false
  readonly streamId: string
  constructor ({ streamId }: { streamId: string }) { this.streamId = streamId }
  close (): void { this.closed = true }
}

/** Signals when a Connection was disposed. */
interface DisposalWatch {
  disposed: Connection[]
  next: Promise<Connection>
}

function disposalWatch (): { watch: DisposalWatch, dispose: (connection: Connection) => void } {
  let resolveNext!: (connection: Connection) => void
  const watch: DisposalWatch = { disposed: [], next: new Promise((resolve) => { resolveNext = resolve }) }
  return {
    watch,
    dispose: (connection) => {
      connection.close()
      // The scope app.ready() builds each handler in (verifyHandlers) is not a stream's.
      if (connection.streamId === 'fastify-cqrs-stream:verify') return
      watch.disposed.push(connection)
      resolveNext(connection)
    },
  }
}

// ProcessOrdersHandler plus a scoped connection it reports in each result.
class TracedOrdersHandler extends ProcessOrdersHandler {
  readonly #connection: Connection

  constructor (deps: { orders: OrderService, connection: Connection, streamId: string }) {
    super(deps)
    this.#connection = deps.connection
  }

  override async * handle (command: ProcessOrdersCommand, context: StreamContext): AsyncGenerator<OrderProcessedResult> {
    if (this.#connection.closed) throw new Error('connection closed before use')
    yield * super.handle(command, context)
  }
}

// A handler with no dependencies but what the stream scope always has.
class PingCommand extends Request(Type.Object({})) {}
class PingResult extends Response(Type.Object({ streamId: Type.String(), aborted: Type.Boolean() })) {}
class PingHandler extends StreamingRequestHandler<PingCommand, PingResult> {
  readonly #streamId: string
  readonly #signal: AbortSignal

  constructor ({ streamId, signal }: { streamId: string, signal: AbortSignal }) {
    super()
    this.#streamId = streamId
    this.#signal = signal
  }

  async * handle (): AsyncGenerator<PingResult> {
    yield new PingResult({ streamId: this.#streamId, aborted: this.#signal.aborted })
  }
}

t.test('options.container builds the handlers (and wins over @fastify/awilix)', async (t) => {
  const orders = new OrderService()
  const other = new OrderService()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyAwilixPlugin, { container: createContainer().register({ orders: asValue(other) }) })
  await app.register(cqrsStream, {
    container: createContainer({ strict: true }).register({ orders: asValue(orders) }),
    requests: (map) => map.bind(ProcessOrdersCommand, ProcessOrdersHandler),
    heartbeatMs: 0,
  })
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const res = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a'] } })
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress(resultOf('a')), complete()]))
  t.same(orders.processed, ['a'])
  t.equal(other.handlersBuilt, 0)
})

t.test("without options.container, @fastify/awilix's app.diContainer is used; its singletons are injected", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyAwilixPlugin, { container: createContainer({ injectionMode: 'PROXY' }) })
  app.diContainer.register({ orders: asClass(OrderService).singleton() })
  await app.register(cqrsStream, {
    requests: (map) => map.bind(ProcessOrdersCommand, ProcessOrdersHandler),
    heartbeatMs: 0,
  })
  app.streamRoute({ method: 'GET', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })

  for (const id of ['a', 'b']) {
    const res = await app.inject({ method: 'GET', url: `/orders/process?orderIds=${id}` })
    const sid = streamIdOf(res.body)
    t.equal(res.body, sseText(sid, [start(sid), progress(resultOf(id)), complete()]))
  }
  const orders = app.diContainer.resolve<OrderService>('orders')
  t.same(orders.processed, ['a', 'b'], 'both streams used the one singleton')
  t.equal(orders.handlersBuilt, 2, 'a handler per stream')
})

t.test('without a container option or @fastify/awilix, a fresh container serves the stream', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(cqrsStream, { requests: (map) => map.bind(PingCommand, PingHandler), heartbeatMs: 0 })
  app.streamRoute({ method: 'POST', url: '/ping', request: PingCommand, response: PingResult })
  const res = await app.inject({ method: 'POST', url: '/ping', payload: {} })
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress({ streamId: sid, aborted: false }), complete()]),
    'streamId and signal come from the stream scope')
})

for (const withFastifyAwilix of [false, true]) {
  const source = withFastifyAwilix ? '@fastify/awilix diContainer' : 'options.container'
  t.test(`a scoped disposable is disposed when the client aborts mid-stream (${source})`, async (t) => {
    const orders = new OrderService()
    const { watch, dispose } = disposalWatch()
    const registrations = {
      orders: asValue(orders),
      connection: asClass(Connection).scoped().disposer(dispose),
    }
    const app = Fastify()
    t.teardown(() => app.close())
    if (withFastifyAwilix) {
      await app.register(fastifyAwilixPlugin, { container: createContainer({ injectionMode: 'PROXY' }) })
      app.diContainer.register(registrations)
    }
    await app.register(cqrsStream, {
      container: withFastifyAwilix ? undefined : createContainer({ strict: true }).register(registrations),
      requests: (map) => map.bind(ProcessOrdersCommand, TracedOrdersHandler),
      heartbeatMs: 0,
    })
    app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
    const base = await listen(app)
    const held = orders.hold('b')
    const res = await openStream(`${base}/orders/process`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orderIds: ['a', 'b', 'c'] }),
    })
    await held.reached
    const sid = streamIdOf(await res.waitFor('"orderId":"a"'))
    t.equal(res.text, sseText(sid, [start(sid), progress(resultOf('a'))]))
    t.same(watch.disposed, [], 'the scope lives while the stream runs')

    res.abort()
    const connection = await within(watch.next, 5000, 'disposal of the stream scope')
    t.equal(connection.closed, true, 'the scoped connection was disposed')
    t.equal(watch.disposed.length, 1)
    t.equal(orders.abortedWhileHeld, true, "the handler's signal aborted")
    t.same(orders.processed, ['a'], 'nothing after the abort was processed')
    await res.ended
  })
}
