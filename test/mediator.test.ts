import t, { type Test } from 'tap'
import { asClass, asFunction, asValue, createContainer } from 'awilix'
import {
  bootstrapStreaming, EventHandler, InMemoryMessageBroker, StreamingRequestHandler, StreamingRequestMediator,
  type StreamContext, type StreamingMediatorOptions,
} from '../src/index.js'
import {
  collect, deferred, ItemEvent, ItemResult, ItemShipped, itemsOf, RecordingLogger, RunCommand, settled, ticks,
  UnboundCommand, until,
} from './fixtures/mediator-kit.js'
import { wayOut, type WayOut } from './fixtures/mediator-way-out.js'

const ABORTED = 'FST_ERR_CQRS_STREAM_ABORTED'
const SHUTDOWN = 'FST_ERR_CQRS_STREAM_SHUTDOWN'
const DONE = { done: true, value: undefined }

/** The checks every way out of a stream must pass. */
function assertCleanEnd (t: Test, fx: WayOut, run = 0): void {
  t.equal(fx.log.at(-2), 'handler:finally', 'the handler\'s finally ran')
  t.equal(fx.log.at(-1), 'dispose', 'then the scope was disposed')
  t.equal(fx.sessions[run]?.disposed, true, 'the scoped disposable was disposed')
  t.equal(fx.signals[run]?.aborted, true, 'context.signal was aborted')
  t.equal(fx.mediator.openStreams, 0, 'no stream is open')
}

/** Event handlers finished before the handler was returned and the scope disposed. */
function assertAwaitedEvents (t: Test, fx: WayOut): void {
  const end = fx.log.indexOf('event:end:event')
  t.ok(end !== -1 && end < fx.log.indexOf('handler:finally'), 'the in-flight event handler finished first')
}

t.test('three yielded items arrive in order, each after its own events were handled', async (t) => {
  const handled: string[] = []
  let produced = 0
  class ItemEventHandler extends EventHandler<ItemEvent> {
    async handle (event: ItemEvent): Promise<void> {
      await ticks(1)
      handled.push(event.item)
    }
  }
  class ThreeHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
    async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
      for (const item of command.items) {
        produced++
        this.emit(new ItemEvent({ item }))
        this.emit(new ItemShipped({ item }))
        yield new ItemResult({ item })
      }
    }
  }
  const broker = new InMemoryMessageBroker()
  const mediator = bootstrapStreaming({
    requests: (map) => map.bind(RunCommand, ThreeHandler),
    events: (map) => map.bind(ItemEvent, ItemEventHandler),
    messageBroker: broker,
  })
  const received: ItemResult[] = []
  for await (const result of mediator.stream<ItemResult>(new RunCommand({ items: ['a', 'b', 'c'] }))) {
    received.push(result)
    const k = received.length
    t.equal(produced, k, `item ${k}: the handler did not run ahead`)
    t.same(handled, itemsOf(received), `item ${k}: exactly the domain events of items 1..${k} were handled`)
    t.equal(broker.messages.length, k, `item ${k}: exactly ${k} notifications were sent`)
  }
  t.same(itemsOf(received), ['a', 'b', 'c'])
  t.ok(received.every((result) => result instanceof ItemResult), 'the results are the yielded instances')
})

t.test('an empty generator gives no items, and the handler was still called', async (t) => {
  let calls = 0
  class EmptyHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
    async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
      calls++
      yield * command.items.filter(() => false).map((item) => new ItemResult({ item }))
    }
  }
  const mediator = bootstrapStreaming({ requests: (map) => map.bind(RunCommand, EmptyHandler) })
  t.same(await collect(mediator.stream(new RunCommand({ items: ['a'] }))), [])
  t.equal(calls, 1)
  t.equal(mediator.openStreams, 0)
})

t.test('a stream with no events, no event bindings and no broker works', async (t) => {
  class PlainHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
    async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
      for (const item of command.items) yield new ItemResult({ item })
    }
  }
  const mediator = new StreamingRequestMediator({ requests: (map) => map.bind(RunCommand, PlainHandler) })
  t.same(itemsOf(await collect(mediator.stream(new RunCommand({ items: ['x', 'y'] })))), ['x', 'y'])
})

t.test('nothing runs until the first pull', async (t) => {
  let built = 0
  let started = 0
  class LazyHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
    constructor () {
      super()
      built++
    }

    async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
      started++
      for (const item of command.items) yield new ItemResult({ item })
    }
  }
  const mediator = bootstrapStreaming({ requests: (map) => map.bind(RunCommand, LazyHandler) })
  const stream = mediator.stream(new RunCommand({ items: ['a'] }))
  await ticks()
  t.equal(built, 0, 'the handler was not constructed')
  t.equal(started, 0)
  t.equal(mediator.openStreams, 0)
  t.same(itemsOf([(await stream.next()).value]), ['a'])
  t.equal(built, 1)
  t.equal(started, 1)
  t.equal(mediator.openStreams, 1)
  t.same(await stream.next(), DONE)
  t.equal(mediator.openStreams, 0)

  // return() before the first pull: the handler is never built.
  const unused = mediator.stream(new RunCommand({ items: ['a'] }))
  t.same(await unused.return(), DONE)
  t.same(await unused.next(), DONE)
  t.same(await unused.return(), DONE)
  t.equal(built, 1)
})

t.test('events emitted after the last yield are handled before the stream ends', async (t) => {
  const handled: string[] = []
  const handlers: StreamingRequestHandler[] = []
  class LateEventHandler extends EventHandler<ItemEvent> {
    async handle (event: ItemEvent): Promise<void> {
      await ticks(1)
      handled.push(event.item)
    }
  }
  class LateHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
    constructor () {
      super()
      handlers.push(this)
    }

    async * handle (): AsyncGenerator<ItemResult> {
      yield new ItemResult({ item: 'a' })
      this.emit(new ItemEvent({ item: 'late' }))
      this.emit(new ItemShipped({ item: 'late' }))
    }
  }
  const broker = new InMemoryMessageBroker()
  const mediator = bootstrapStreaming({
    requests: (map) => map.bind(RunCommand, LateHandler),
    events: (map) => map.bind(ItemEvent, LateEventHandler),
    messageBroker: broker,
  })
  const stream = mediator.stream(new RunCommand({ items: [] }))
  t.equal((await stream.next()).done, false)
  t.same(handled, [])
  t.same(await stream.next(), DONE)
  t.same(handled, ['late'], 'the late domain event was handled')
  t.same(broker.messages.map((m) => m.payload), [{ item: 'late' }], 'the late notification was sent')
  t.same(handlers[0]?.events, [], 'the handler\'s collected events are empty after the stream ends')
})

t.test('the handler\'s collected events are empty after the stream ends, even when it threw', async (t) => {
  const handled: string[] = []
  const handlers: StreamingRequestHandler[] = []
  class NeverReachedHandler extends EventHandler<ItemEvent> {
    handle (event: ItemEvent): void { handled.push(event.item) }
  }
  const boom = new Error('boom')
  class ThrowingHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
    constructor () {
      super()
      handlers.push(this)
    }

    async * handle (): AsyncGenerator<ItemResult> {
      this.emit(new ItemEvent({ item: 'first' }))
      yield new ItemResult({ item: 'a' })
      this.emit(new ItemEvent({ item: 'dropped' }))
      t.equal(this.events.length, 1, 'the event is pending before the throw')
      throw boom
    }
  }
  const mediator = bootstrapStreaming({
    requests: (map) => map.bind(RunCommand, ThrowingHandler),
    events: (map) => map.bind(ItemEvent, NeverReachedHandler),
  })
  const stream = mediator.stream(new RunCommand({ items: [] }))
  t.equal((await stream.next()).done, false)
  await t.rejects(stream.next(), boom, 'the handler\'s error reaches the consumer as it is')
  t.same(handled, ['first'], 'events emitted before the throw were dropped')
  t.same(handlers[0]?.events, [])
  t.same(await stream.next(), DONE, 'a failed stream is done afterwards')
})

t.test('a handler emitting something that is not an event fails the stream', async (t) => {
  class BadEmitHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
    async * handle (): AsyncGenerator<ItemResult> {
      this.emit({ item: 'plain object' } as unknown as ItemEvent)
      yield new ItemResult({ item: 'never' })
    }
  }
  const mediator = bootstrapStreaming({ requests: (map) => map.bind(RunCommand, BadEmitHandler) })
  await t.rejects(collect(mediator.stream(new RunCommand({ items: [] }))), { code: 'FST_ERR_CQRS_STREAM_INVALID_BINDING' })
})

t.test('an unbound request type fails with NO_HANDLER on the first pull', async (t) => {
  const mediator = bootstrapStreaming()
  const stream = mediator.stream(new UnboundCommand({}))
  t.equal(mediator.openStreams, 0, 'stream() itself does not throw or start anything')
  await t.rejects(stream.next(), { code: 'FST_ERR_CQRS_STREAM_NO_HANDLER', statusCode: 500 })
  t.equal(mediator.openStreams, 0)
  t.same(await stream.next(), DONE)
})

t.test('handlers get their dependencies from the Awilix container', async (t) => {
  interface OrderRepository { total (id: string): number }
  class InMemoryOrderRepository implements OrderRepository {
    total (id: string): number { return id.length * 10 }
  }
  let sessionCount = 0
  class Session {
    readonly id = ++sessionCount
    disposed = false
  }
  interface Config { readonly currency: string }
  const makeFormatter = ({ config }: { config: Config }) => (amount: number): string => `${amount} ${config.currency}`
  interface Deps {
    orderRepository: OrderRepository
    format: (amount: number) => string
    session: Session
    signal: AbortSignal
    streamId: string
    tenant: string
  }
  interface Seen { deps: Deps, context: StreamContext, eventSession?: Session }
  const seen: Seen[] = []

  class SessionEventHandler extends EventHandler<ItemEvent> {
    constructor (private readonly deps: { session: Session }) { super() }
    handle (): void { seen.at(-1)!.eventSession = this.deps.session }
  }
  class OrdersHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
    constructor (private readonly deps: Deps) { super() }
    async * handle (command: RunCommand, context: StreamContext): AsyncGenerator<ItemResult> {
      const { orderRepository, format, session, signal, streamId, tenant } = this.deps
      seen.push({ deps: { orderRepository, format, session, signal, streamId, tenant }, context })
      for (const id of command.items) {
        this.emit(new ItemEvent({ item: id }))
        yield new ItemResult({ item: `${tenant}/${id}: ${format(orderRepository.total(id))}` })
      }
    }
  }
  const container = createContainer({ strict: true }).register({
    orderRepository: asClass(InMemoryOrderRepository).singleton(),
    format: asFunction(makeFormatter).scoped(),
    config: asValue({ currency: 'EUR' }),
    session: asClass(Session).scoped().disposer((session) => { session.disposed = true }),
  })
  const mediator = bootstrapStreaming({
    container,
    requests: (map) => map.bind(RunCommand, OrdersHandler),
    events: (map) => map.bind(ItemEvent, SessionEventHandler),
  })

  const first = mediator.stream(new RunCommand({ items: ['ab'] }), { values: { tenant: 'acme' }, streamId: 'stream-1' })
  const second = mediator.stream(new RunCommand({ items: ['abc'] }), { values: { tenant: 'globex' } })
  t.same(itemsOf(await collect(first)), ['acme/ab: 20 EUR'], 'asClass, asFunction and asValue registrations were used')
  t.same(itemsOf(await collect(second)), ['globex/abc: 30 EUR'])

  const [one, two] = seen as [Seen, Seen]
  t.type(one.deps.orderRepository, InMemoryOrderRepository, 'the interface-typed dependency is the registered implementation')
  t.equal(one.deps.orderRepository, two.deps.orderRepository, 'a singleton is shared across streams')
  t.not(one.deps.session, two.deps.session, 'a scoped service is fresh per stream')
  t.equal(one.eventSession, one.deps.session, 'event handlers share the stream\'s scoped services')
  t.equal(two.eventSession, two.deps.session)
  t.ok(one.deps.session.disposed && two.deps.session.disposed, 'scoped disposables are disposed when each stream ends')
  t.equal(one.deps.signal, one.context.signal, 'the scope\'s signal is context.signal')
  t.equal(one.deps.streamId, 'stream-1', 'the scope\'s streamId is the one given to stream()')
  t.equal(first.streamId, 'stream-1')
  t.equal(two.deps.streamId, second.streamId, 'a random streamId otherwise')
  t.equal(two.context.streamId, second.streamId)
  t.match(second.streamId, /^[0-9a-f-]{36}$/)
  t.not(two.deps.signal, one.deps.signal)
})

t.test('every way out of a stream cleans up', async (t) => {
  t.test('completion', async (t) => {
    const fx = wayOut()
    fx.gate.resolve()
    t.same(itemsOf(await collect(fx.mediator.stream(new RunCommand({ items: ['a', 'event', 'b'] })))), ['a', 'event', 'b'])
    t.same(fx.log, ['yield:a', 'yield:event', 'event:start:event', 'event:end:event', 'yield:b', 'handler:finally', 'dispose'])
    assertCleanEnd(t, fx)
  })

  t.test('the handler throws', async (t) => {
    const fx = wayOut()
    await t.rejects(collect(fx.mediator.stream(new RunCommand({ items: ['a', 'throw', 'b'] }))), { message: 'boom' })
    t.same(fx.log, ['yield:a', 'handler:finally', 'dispose'])
    assertCleanEnd(t, fx)
  })

  t.test('the consumer breaks', async (t) => {
    const fx = wayOut()
    // eslint-disable-next-line no-unreachable-loop -- a consumer that stops after one item
    for await (const result of fx.mediator.stream<ItemResult>(new RunCommand({ items: ['a', 'b'] }))) {
      t.equal(result.item, 'a')
      break
    }
    t.same(fx.log, ['yield:a', 'handler:finally', 'dispose'])
    assertCleanEnd(t, fx)
  })

  t.test('return() while an item is being produced', async (t) => {
    const fx = wayOut()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a', 'sleep', 'b'] }))
    t.equal((await stream.next()).done, false)
    const pending = t.rejects(stream.next(), { code: ABORTED }, 'the pull in progress rejects with ABORTED')
    await until(() => fx.log.includes('sleep'), 'the handler to sleep')
    t.same(await stream.return(), DONE)
    t.same(fx.log, ['yield:a', 'sleep', 'handler:finally', 'dispose'], 'return() resolved after the cleanup')
    assertCleanEnd(t, fx)
    await pending
    t.same(await stream.next(), DONE)
  })

  t.test('return() while event handlers are in flight waits for them', async (t) => {
    const fx = wayOut()
    const stream = fx.mediator.stream(new RunCommand({ items: ['event', 'b'] }))
    const pending = stream.next()
    await until(() => fx.log.includes('event:start:event'), 'the event handler to start')
    const returned = stream.return()
    t.equal(fx.signals[0]?.aborted, true, 'the signal aborts at once')
    t.notOk(await settled(returned), 'return() waits for the event handler')
    t.notOk(fx.log.includes('dispose'))
    fx.gate.resolve()
    t.same(await returned, DONE)
    t.same(itemsOf([(await pending).value]), ['event'], 'the pull in progress got the item it was producing')
    t.same(fx.log, ['yield:event', 'event:start:event', 'event:end:event', 'handler:finally', 'dispose'])
    assertAwaitedEvents(t, fx)
    assertCleanEnd(t, fx)
  })

  t.test('the caller\'s signal aborts while an item is being produced', async (t) => {
    const fx = wayOut()
    const controller = new AbortController()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a', 'sleep', 'b'] }), { signal: controller.signal })
    t.equal((await stream.next()).done, false)
    const pending = stream.next()
    await until(() => fx.log.includes('sleep'), 'the handler to sleep')
    controller.abort()
    const error = await pending.then(() => undefined, (error: unknown) => error)
    t.match(error, { code: ABORTED, statusCode: 499 }, 'the pull in progress rejects with ABORTED')
    t.type((error as Error).cause, DOMException, 'the signal\'s reason is the cause')
    assertCleanEnd(t, fx)
    await t.rejects(stream.next(), { code: ABORTED }, 'so does every later pull')
  })

  t.test('the caller\'s signal aborts between pulls', async (t) => {
    const fx = wayOut()
    const controller = new AbortController()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a', 'b'] }), { signal: controller.signal })
    t.equal((await stream.next()).done, false)
    controller.abort()
    await t.rejects(stream.next(), { code: ABORTED }, 'the next pull rejects with ABORTED')
    t.same(fx.log, ['yield:a', 'handler:finally', 'dispose'])
    assertCleanEnd(t, fx)
  })

  t.test('the caller\'s signal aborts while event handlers are in flight', async (t) => {
    const fx = wayOut()
    const controller = new AbortController()
    const stream = fx.mediator.stream(new RunCommand({ items: ['event', 'b'] }), { signal: controller.signal })
    const pending = stream.next()
    await until(() => fx.log.includes('event:start:event'), 'the event handler to start')
    controller.abort(new Error('caller gave up'))
    t.equal(fx.signals[0]?.aborted, true, 'the handler\'s signal aborts at once')
    await ticks()
    t.notOk(fx.log.includes('dispose'), 'the scope is kept until the event handler finished')
    fx.gate.resolve()
    t.equal((await pending).done, false, 'the pull in progress got its item')
    const error = await stream.next().then(() => undefined, (error: unknown) => error)
    t.match(error, { code: ABORTED }, 'the next pull rejects with ABORTED')
    t.match((error as Error).cause, { message: 'caller gave up' })
    assertAwaitedEvents(t, fx)
    assertCleanEnd(t, fx)
  })

  t.test('mediator.close() while an item is being produced', async (t) => {
    const fx = wayOut()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a', 'sleep', 'b'] }))
    t.equal((await stream.next()).done, false)
    const pending = t.rejects(stream.next(), { code: SHUTDOWN, statusCode: 503 }, 'the pull in progress rejects with SHUTDOWN')
    await until(() => fx.log.includes('sleep'), 'the handler to sleep')
    await fx.mediator.close()
    t.same(fx.log, ['yield:a', 'sleep', 'handler:finally', 'dispose'], 'close() resolved after the cleanup')
    assertCleanEnd(t, fx)
    await pending
    await t.rejects(stream.next(), { code: SHUTDOWN }, 'so does every later pull')
    t.same(fx.logger.warns, [], 'nothing timed out')
  })

  t.test('mediator.close() while event handlers are in flight waits for them', async (t) => {
    const fx = wayOut()
    const stream = fx.mediator.stream(new RunCommand({ items: ['event', 'b'] }))
    const pending = stream.next()
    await until(() => fx.log.includes('event:start:event'), 'the event handler to start')
    const closed = fx.mediator.close()
    t.notOk(await settled(closed), 'close() waits for the event handler')
    fx.gate.resolve()
    await closed
    t.equal((await pending).done, false)
    await t.rejects(stream.next(), { code: SHUTDOWN })
    assertAwaitedEvents(t, fx)
    assertCleanEnd(t, fx)
  })

  t.test('a stream started after close() rejects with SHUTDOWN and builds nothing', async (t) => {
    const fx = wayOut()
    await fx.mediator.close()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a'] }))
    await t.rejects(stream.next(), { code: SHUTDOWN })
    await t.rejects(collect(fx.mediator.stream(new RunCommand({ items: ['a'] }))), { code: SHUTDOWN })
    t.equal(fx.built(), 0)
    t.same(fx.log, [])
  })

  t.test('a stream created before close() but first pulled after it rejects with SHUTDOWN', async (t) => {
    const fx = wayOut()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a'] }))
    await fx.mediator.close()
    await t.rejects(stream.next(), { code: SHUTDOWN })
    await t.rejects(stream.next(), { code: SHUTDOWN })
    t.equal(fx.built(), 0)
    t.same(fx.log, [])
    t.equal(fx.mediator.openStreams, 0)
  })

  t.test('close() gives up on a handler that ignores the abort after timeoutMs', async (t) => {
    const fx = wayOut()
    const stream = fx.mediator.stream(new RunCommand({ items: ['stuck', 'b'] }))
    const pending = t.rejects(stream.next(), { code: SHUTDOWN })
    await until(() => fx.log.includes('stuck'), 'the handler to get stuck')
    await fx.mediator.close({ timeoutMs: 20 })
    t.equal(fx.logger.warns.length, 1, 'one warning')
    t.match(fx.logger.warns[0]?.object, { err: { code: 'FST_ERR_CQRS_STREAM_CLOSE_TIMEOUT' } })
    t.equal(fx.mediator.openStreams, 1, 'the stuck stream is still open')
    t.notOk(fx.log.includes('dispose'))
    fx.stuck.resolve()
    await pending
    assertCleanEnd(t, fx)
  })

  t.test('close() with a custom reason', async (t) => {
    const fx = wayOut()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a', 'b'] }))
    t.equal((await stream.next()).done, false)
    const reason = new Error('maintenance')
    await fx.mediator.close({ reason })
    await t.rejects(stream.next(), reason)
    assertCleanEnd(t, fx)
  })

  t.end()
})

t.test('close() waits for a stream whose scope is still being disposed', async (t) => {
  const disposing = deferred()
  let disposed = false
  class Resource {}
  class UsesResource extends StreamingRequestHandler<RunCommand, ItemResult> {
    constructor (private readonly deps: { resource: Resource }) { super() }
    async * handle (): AsyncGenerator<ItemResult> {
      yield new ItemResult({ item: String(this.deps.resource instanceof Resource) })
    }
  }
  const mediator = bootstrapStreaming({
    container: createContainer().register({
      resource: asClass(Resource).scoped().disposer(async () => {
        await disposing.promise
        disposed = true
      }),
    }),
    requests: (map) => map.bind(RunCommand, UsesResource),
  })
  const consumed = collect(mediator.stream(new RunCommand({ items: [] })))
  await until(() => mediator.openStreams === 1, 'the stream to open')
  await ticks()
  t.notOk(await settled(consumed), 'the stream waits for its scope')
  const closed = mediator.close()
  t.notOk(await settled(closed), 'so does close()')
  disposing.resolve()
  await closed
  t.ok(disposed)
  t.same(itemsOf(await consumed), ['true'])
  t.equal(mediator.openStreams, 0)
})

t.test('failures while stopping are logged, not thrown', async (t) => {
  t.test('a handler whose finally throws on break', async (t) => {
    const logger = new RecordingLogger()
    const stopError = new Error('cannot stop')
    class BadFinally extends StreamingRequestHandler<RunCommand, ItemResult> {
      async * handle (): AsyncGenerator<ItemResult> {
        try {
          yield new ItemResult({ item: 'a' })
          yield new ItemResult({ item: 'b' })
        } finally {
          // eslint-disable-next-line no-unsafe-finally
          throw stopError
        }
      }
    }
    const mediator = bootstrapStreaming({ logger, requests: (map) => map.bind(RunCommand, BadFinally) })
    const stream = mediator.stream(new RunCommand({ items: [] }), { streamId: 's1' })
    // eslint-disable-next-line no-unreachable-loop -- a consumer that stops after one item
    for await (const result of stream) {
      t.type(result, ItemResult)
      break
    }
    t.equal(logger.warns.length, 1)
    t.same(logger.warns[0]?.object, { err: stopError, streamId: 's1' })
    t.equal(mediator.openStreams, 0)
  })

  t.test('a disposer that throws', async (t) => {
    const logger = new RecordingLogger()
    const disposeError = new Error('cannot dispose')
    class Resource {}
    class UsesResource extends StreamingRequestHandler<RunCommand, ItemResult> {
      constructor (private readonly deps: { resource: Resource }) { super() }
      async * handle (): AsyncGenerator<ItemResult> {
        yield new ItemResult({ item: String(this.deps.resource instanceof Resource) })
      }
    }
    const mediator = bootstrapStreaming({
      logger,
      container: createContainer().register({
        resource: asClass(Resource).scoped().disposer(() => { throw disposeError }),
      }),
      requests: (map) => map.bind(RunCommand, UsesResource),
    })
    const stream = mediator.stream(new RunCommand({ items: [] }), { streamId: 's2' })
    t.same(itemsOf(await collect(stream)), ['true'], 'the stream still completes')
    t.same(logger.errors.map((call) => call.object), [{ err: disposeError, streamId: 's2' }])
    t.equal(mediator.openStreams, 0)
  })

  t.end()
})

t.test('the caller\'s signal', async (t) => {
  t.test('already aborted: the first pull rejects and nothing is built', async (t) => {
    const fx = wayOut()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a'] }), { signal: AbortSignal.abort() })
    await t.rejects(stream.next(), { code: ABORTED })
    await t.rejects(stream.next(), { code: ABORTED })
    t.equal(fx.built(), 0)
    t.equal(fx.mediator.openStreams, 0)
  })

  t.test('aborted before the first pull', async (t) => {
    const fx = wayOut()
    const controller = new AbortController()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a'] }), { signal: controller.signal })
    controller.abort()
    await t.rejects(stream.next(), { code: ABORTED })
    t.equal(fx.built(), 0)
  })

  t.test('a reason that is already a coded error is kept as it is', async (t) => {
    const fx = wayOut()
    const controller = new AbortController()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a', 'b'] }), { signal: controller.signal })
    t.equal((await stream.next()).done, false)
    const reason = Object.assign(new Error('custom'), { code: 'MY_CODE' })
    controller.abort(reason)
    await t.rejects(stream.next(), reason)
    assertCleanEnd(t, fx)
  })

  t.test('a stream that ended stops listening to the signal', async (t) => {
    const fx = wayOut()
    const controller = new AbortController()
    const stream = fx.mediator.stream(new RunCommand({ items: ['a'] }), { signal: controller.signal })
    t.same(itemsOf(await collect(stream)), ['a'])
    controller.abort()
    t.same(await stream.next(), DONE, 'a finished stream stays finished')
  })

  t.end()
})

t.test('a stream can be iterated once; openStreams counts running streams', async (t) => {
  const fx = wayOut()
  fx.gate.resolve()
  const first = fx.mediator.stream(new RunCommand({ items: ['a', 'b'] }))
  const second = fx.mediator.stream(new RunCommand({ items: ['a', 'b'] }))
  t.equal(fx.mediator.openStreams, 0)
  const iterator = first[Symbol.asyncIterator]()
  t.equal(iterator, first, 'the stream is its own iterator')
  t.throws(() => first[Symbol.asyncIterator](), { code: 'FST_ERR_CQRS_STREAM_ALREADY_CONSUMED' })
  await first.next()
  t.equal(fx.mediator.openStreams, 1)
  await second.next()
  t.equal(fx.mediator.openStreams, 2)
  t.same(itemsOf(await collect(second)), ['b'])
  t.equal(fx.mediator.openStreams, 1)
  await first.return()
  t.equal(fx.mediator.openStreams, 0)
  await t.rejects(collect(second), { code: 'FST_ERR_CQRS_STREAM_ALREADY_CONSUMED' }, 'for await twice throws')
})

t.test('invalid mediator options throw INVALID_OPTION', async (t) => {
  const noop = (): void => {}
  const cases: Array<[string, Record<string, unknown>]> = [
    ['container', { container: {} }],
    ['container', { container: null }],
    ['container', { container: 'container' }],
    ['requests', { requests: {} }],
    ['events', { events: 'events' }],
    ['messageBroker', { messageBroker: {} }],
    ['messageBroker', { messageBroker: null }],
    ['maxConcurrentEventHandlers', { maxConcurrentEventHandlers: 0 }],
    ['maxConcurrentEventHandlers', { maxConcurrentEventHandlers: 1.5 }],
    ['maxConcurrentEventHandlers', { maxConcurrentEventHandlers: 'x' }],
    ['maxConcurrentEventHandlers', { maxConcurrentEventHandlers: -1 }],
    ['maxConcurrentEventHandlers', { maxConcurrentEventHandlers: Number.NaN }],
    ['concurrentEventHandling', { concurrentEventHandling: 'yes' }],
    ['middlewares', { middlewares: noop }],
    ['middlewares', { middlewares: [noop, 'x'] }],
    ['eventHandlerFailure', { eventHandlerFailure: 'ignore' }],
    ['onEventHandlerError', { onEventHandlerError: 'log' }],
    ['logger', { logger: { error: noop } }],
    ['logger', { logger: null }],
  ]
  for (const [name, options] of cases) {
    t.throws(() => bootstrapStreaming(options as StreamingMediatorOptions), {
      code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION',
      message: new RegExp(`"${name}"`),
    }, `${name}: ${String(Object.values(options)[0])}`)
  }
  t.type(bootstrapStreaming({ maxConcurrentEventHandlers: Number.POSITIVE_INFINITY }), StreamingRequestMediator, 'Infinity is accepted')
  t.type(bootstrapStreaming({
    container: createContainer(),
    requests: noop,
    events: noop,
    messageBroker: new InMemoryMessageBroker(),
    maxConcurrentEventHandlers: 1,
    concurrentEventHandling: false,
    middlewares: [],
    eventHandlerFailure: 'fail-stream',
    onEventHandlerError: noop,
    logger: new RecordingLogger(),
  }), StreamingRequestMediator, 'every valid option together')
})

t.test('without a logger, the mediator logs to the console', async (t) => {
  const consoleErrors = t.capture(console, 'error')
  const consoleWarns = t.capture(console, 'warn')
  const boom = new Error('event handler failed')
  class FailingEventHandler extends EventHandler<ItemEvent> {
    handle (): void { throw boom }
  }
  const fx = wayOut({
    logger: undefined,
    events: (map) => map.bind(ItemEvent, FailingEventHandler),
  })
  t.same(itemsOf(await collect(fx.mediator.stream(new RunCommand({ items: ['event'] })))), ['event'])
  const errorCalls = consoleErrors()
  t.equal(errorCalls.length, 1)
  t.match(errorCalls[0]?.args, [/FailingEventHandler/, { err: boom, eventName: 'ItemEvent', handlerName: 'FailingEventHandler' }])

  const stream = fx.mediator.stream(new RunCommand({ items: ['stuck'] }))
  const pending = t.rejects(stream.next(), { code: SHUTDOWN })
  await until(() => fx.log.includes('stuck'), 'the handler to get stuck')
  await fx.mediator.close({ timeoutMs: 1 })
  const warnCalls = consoleWarns()
  t.equal(warnCalls.length, 1)
  t.match(warnCalls[0]?.args, [/timed out/, { err: { code: 'FST_ERR_CQRS_STREAM_CLOSE_TIMEOUT' } }])
  fx.stuck.resolve()
  await pending
})
