import t from 'tap'
import { asClass, createContainer } from 'awilix'
import {
  bootstrapStreaming, EventHandler, InMemoryMessageBroker, StreamingRequestHandler,
  type BrokerMessage, type EventHandlerErrorInfo, type MessageBroker, type StreamContext,
} from '../src/index.js'
import {
  collect, deferred, FollowUpEvent, Gauge, ItemEvent, ItemResult, ItemShipped, itemsOf, RecordingLogger, RunCommand,
  ticks, until,
} from './fixtures/mediator-kit.js'

const FAILED = 'FST_ERR_CQRS_STREAM_EVENT_HANDLER_FAILED'
const DONE = { done: true, value: undefined }

/** Emits one ItemEvent per item, then yields one result for all of them. */
class BurstHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
  async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
    for (const item of command.items) this.emit(new ItemEvent({ item }))
    yield new ItemResult({ item: command.items.join(',') })
  }
}

/** Emits one ItemEvent per item and yields it. */
class PerItemHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
  async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
    for (const item of command.items) {
      this.emit(new ItemEvent({ item }))
      yield new ItemResult({ item })
    }
  }
}

const modes = [
  { name: 'concurrent', concurrentEventHandling: true },
  { name: 'sequential', concurrentEventHandling: false },
] as const

t.test('concurrent mode: never more than maxConcurrentEventHandlers at once, follow-ups included', async (t) => {
  const levels = [new Gauge(), new Gauge()] as const
  const handled: string[] = []
  class FirstLevel extends EventHandler<ItemEvent> {
    async handle (event: ItemEvent): Promise<void> {
      await levels[0].run(async () => {
        await ticks(1)
        this.emit(new FollowUpEvent({ item: event.item, level: 1 }))
      })
      handled.push(`0:${event.item}`)
    }
  }
  class SecondLevel extends EventHandler<FollowUpEvent> {
    async handle (event: FollowUpEvent): Promise<void> {
      await levels[1].run(() => ticks(1))
      handled.push(`${event.level}:${event.item}`)
    }
  }
  const mediator = bootstrapStreaming({
    maxConcurrentEventHandlers: 2,
    requests: (map) => map.bind(RunCommand, BurstHandler),
    events: (map) => map.bind(ItemEvent, FirstLevel).bind(FollowUpEvent, SecondLevel),
  })
  const items = ['a', 'b', 'c', 'd', 'e']
  const stream = mediator.stream(new RunCommand({ items }))
  t.equal((await stream.next()).done, false)
  t.equal(handled.length, 10, 'the 5 events and their 5 follow-ups were handled before the item arrived')
  t.equal(levels[0].max, 2, 'at most 2 of the 5 events were handled at once')
  t.equal(levels[1].max, 2, 'at most 2 of the 5 follow-ups were handled at once')
  t.same(await stream.next(), DONE)
})

t.test('the limit is shared by every stream of the mediator', async (t) => {
  const gauge = new Gauge()
  const gate = deferred()
  const dispatching = new Set<string>()
  let handled = 0
  class Gated extends EventHandler<ItemEvent> {
    async handle (): Promise<void> {
      await gauge.run(() => gate.promise)
      handled++
    }
  }
  class MarkingBurst extends StreamingRequestHandler<RunCommand, ItemResult> {
    async * handle (command: RunCommand, context: StreamContext): AsyncGenerator<ItemResult> {
      for (const item of command.items) this.emit(new ItemEvent({ item }))
      dispatching.add(context.streamId)
      yield new ItemResult({ item: context.streamId })
    }
  }
  const mediator = bootstrapStreaming({
    maxConcurrentEventHandlers: 2,
    requests: (map) => map.bind(RunCommand, MarkingBurst),
    events: (map) => map.bind(ItemEvent, Gated),
  })
  const command = new RunCommand({ items: ['a', 'b', 'c', 'd', 'e'] })
  const first = mediator.stream(command, { streamId: 'first' })
  const second = mediator.stream(command, { streamId: 'second' })
  const results = Promise.all([first.next(), second.next()])
  await until(() => dispatching.size === 2 && gauge.active === 2, 'both streams to dispatch')
  await ticks(5)
  t.equal(gauge.active, 2, 'with 10 events of two streams pending, only 2 handlers run')
  gate.resolve()
  t.same(itemsOf((await results).map((result) => result.value)), ['first', 'second'])
  t.equal(handled, 10)
  t.equal(gauge.max, 2)
})

t.test('maxConcurrentEventHandlers Infinity starts every handler of a round at once', async (t) => {
  const gauge = new Gauge()
  const gate = deferred()
  class Gated extends EventHandler<ItemEvent> {
    async handle (): Promise<void> { await gauge.run(() => gate.promise) }
  }
  const mediator = bootstrapStreaming({
    maxConcurrentEventHandlers: Number.POSITIVE_INFINITY,
    requests: (map) => map.bind(RunCommand, BurstHandler),
    events: (map) => map.bind(ItemEvent, Gated),
  })
  const consumed = collect(mediator.stream(new RunCommand({ items: ['a', 'b', 'c', 'd', 'e'] })))
  await until(() => gauge.active === 5, 'all 5 handlers to run')
  gate.resolve()
  t.same(itemsOf(await consumed), ['a,b,c,d,e'])
  t.equal(gauge.max, 5)
})

t.test('follow-up events are handled level by level (breadth first)', async (t) => {
  for (const mode of modes) {
    t.test(mode.name, async (t) => {
      const gauge = new Gauge()
      const trace: string[] = []
      const step = async (name: string): Promise<void> => {
        trace.push(`start ${name}`)
        await gauge.run(() => ticks(1))
        trace.push(`end ${name}`)
      }
      class Level0 extends EventHandler<ItemEvent> {
        async handle (event: ItemEvent): Promise<void> {
          await step(`0:${event.item}`)
          this.emit(new FollowUpEvent({ item: event.item, level: 1 }))
        }
      }
      class Deeper extends EventHandler<FollowUpEvent> {
        async handle (event: FollowUpEvent): Promise<void> {
          await step(`${event.level}:${event.item}`)
          if (event.level < 2) this.emit(new FollowUpEvent({ item: event.item, level: event.level + 1 }))
        }
      }
      const mediator = bootstrapStreaming({
        concurrentEventHandling: mode.concurrentEventHandling,
        requests: (map) => map.bind(RunCommand, BurstHandler),
        events: (map) => map.bind(ItemEvent, Level0).bind(FollowUpEvent, Deeper),
      })
      t.same(itemsOf(await collect(mediator.stream(new RunCommand({ items: ['a', 'b'] })))), ['a,b'])
      const starts = trace.filter((entry) => entry.startsWith('start')).map((entry) => entry.slice(6))
      t.same(starts, ['0:a', '0:b', '1:a', '1:b', '2:a', '2:b'], 'each level started in emit order, after the one above')
      for (const level of [1, 2]) {
        const firstStart = trace.findIndex((entry) => entry.startsWith(`start ${level}:`))
        const lastEndAbove = trace.findLastIndex((entry) => entry.startsWith(`end ${level - 1}:`))
        t.ok(lastEndAbove < firstStart, `level ${level} started after level ${level - 1} ended`)
      }
      if (mode.concurrentEventHandling) {
        t.equal(gauge.max, 2, 'the two events of a level ran together')
      } else {
        t.equal(gauge.max, 1, 'one handler after another')
        t.same(trace.slice(0, 4), ['start 0:a', 'end 0:a', 'start 0:b', 'end 0:b'])
      }
    })
  }
  t.end()
})

t.test('sequential mode runs one handler at a time, in binding order, whatever the limit', async (t) => {
  const gauge = new Gauge()
  const trace: string[] = []
  class First extends EventHandler<ItemEvent> {
    async handle (event: ItemEvent): Promise<void> {
      await gauge.run(() => ticks(1))
      trace.push(`first:${event.item}`)
    }
  }
  class Second extends EventHandler<ItemEvent> {
    async handle (event: ItemEvent): Promise<void> {
      await gauge.run(() => ticks(1))
      trace.push(`second:${event.item}`)
    }
  }
  const mediator = bootstrapStreaming({
    concurrentEventHandling: false,
    maxConcurrentEventHandlers: 10,
    requests: (map) => map.bind(RunCommand, BurstHandler),
    events: (map) => map.bind(ItemEvent, First).bind(ItemEvent, Second),
  })
  await collect(mediator.stream(new RunCommand({ items: ['a', 'b', 'c', 'd', 'e'] })))
  t.equal(gauge.max, 1)
  t.same(trace, ['a', 'b', 'c', 'd', 'e'].flatMap((item) => [`first:${item}`, `second:${item}`]))
})

t.test('notification events reach the broker once per event, right after the item that produced them', async (t) => {
  for (const mode of modes) {
    t.test(mode.name, async (t) => {
      class Shipping extends StreamingRequestHandler<RunCommand, ItemResult> {
        async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
          for (const item of command.items) {
            this.emit(new ItemShipped({ item }, { eventId: `id-${item}` }))
            if (item === 'b') this.emit(new ItemShipped({ item: 'b2' }, { eventId: 'id-b2' }))
            this.emit(new ItemEvent({ item }))
            yield new ItemResult({ item })
          }
        }
      }
      const broker = new InMemoryMessageBroker()
      const mediator = bootstrapStreaming({
        messageBroker: broker,
        concurrentEventHandling: mode.concurrentEventHandling,
        requests: (map) => map.bind(RunCommand, Shipping),
      })
      const message = (item: string): BrokerMessage =>
        ({ messageName: 'ItemShipped', messageId: `id-${item}`, topic: 'items.shipped', payload: { item } })
      const seen: BrokerMessage[][] = []
      for await (const result of mediator.stream(new RunCommand({ items: ['a', 'b', 'c'] }))) {
        t.type(result, ItemResult)
        seen.push([...broker.messages])
      }
      t.same(seen, [
        [message('a')],
        [message('a'), message('b'), message('b2')],
        [message('a'), message('b'), message('b2'), message('c')],
      ], 'after item k, exactly the notifications of items 1..k were sent, each once, as broker messages')
    })
  }
  t.end()
})

t.test('event handlers are built once per stream and class, from the stream\'s scope', async (t) => {
  class Session {}
  interface Built { handler: string, streamId: string, session: Session, handled: string[] }
  const built: Built[] = []
  const sessions = new Map<string, Session>()
  interface Deps { streamId: string, session: Session }
  const record = (handler: string, deps: Deps): Built => {
    const entry = { handler, streamId: deps.streamId, session: deps.session, handled: [] }
    built.push(entry)
    return entry
  }
  class Audit extends EventHandler<ItemEvent> {
    readonly #entry: Built
    constructor (deps: Deps) {
      super()
      this.#entry = record('Audit', deps)
    }

    handle (event: ItemEvent): void { this.#entry.handled.push(event.item) }
  }
  class Metrics extends EventHandler<ItemEvent> {
    readonly #entry: Built
    constructor (deps: Deps) {
      super()
      this.#entry = record('Metrics', deps)
    }

    handle (event: ItemEvent): void { this.#entry.handled.push(event.item) }
  }
  class SessionHandler extends StreamingRequestHandler<RunCommand, ItemResult> {
    constructor (private readonly deps: Deps) { super() }
    async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
      sessions.set(this.deps.streamId, this.deps.session)
      for (const item of command.items) {
        this.emit(new ItemEvent({ item }))
        yield new ItemResult({ item })
      }
    }
  }
  const mediator = bootstrapStreaming({
    container: createContainer({ strict: true }).register({ session: asClass(Session).scoped() }),
    requests: (map) => map.bind(RunCommand, SessionHandler),
    events: (map) => map.bind(ItemEvent, Audit).bind(ItemEvent, Metrics),
  })
  await collect(mediator.stream(new RunCommand({ items: ['a', 'b', 'c'] }), { streamId: 's1' }))
  await collect(mediator.stream(new RunCommand({ items: ['d', 'e'] }), { streamId: 's2' }))
  t.same(built.map(({ handler, streamId, handled }) => ({ handler, streamId, handled })), [
    { handler: 'Audit', streamId: 's1', handled: ['a', 'b', 'c'] },
    { handler: 'Metrics', streamId: 's1', handled: ['a', 'b', 'c'] },
    { handler: 'Audit', streamId: 's2', handled: ['d', 'e'] },
    { handler: 'Metrics', streamId: 's2', handled: ['d', 'e'] },
  ], 'one instance per class and stream, handling every event of its stream')
  for (const entry of built) {
    t.equal(entry.session, sessions.get(entry.streamId), `${entry.handler} in ${entry.streamId} got the stream's scoped session`)
  }
  t.not(sessions.get('s1'), sessions.get('s2'))
})

t.test('an event handler may emit follow-up domain and notification events', async (t) => {
  const handled: string[] = []
  const eventHandlers: EventHandler[] = []
  class Fanout extends EventHandler<ItemEvent> {
    constructor () {
      super()
      eventHandlers.push(this)
    }

    handle (event: ItemEvent): void {
      this.emit(new FollowUpEvent({ item: `fanout-${event.item}`, level: 1 }))
      this.emit(new ItemShipped({ item: event.item }, { eventId: `shipped-${event.item}` }))
    }
  }
  class Echo extends EventHandler<ItemEvent> {
    constructor () {
      super()
      eventHandlers.push(this)
    }

    handle (event: ItemEvent): void { this.emit(new FollowUpEvent({ item: `echo-${event.item}`, level: 1 })) }
  }
  class FollowUps extends EventHandler<FollowUpEvent> {
    async handle (event: FollowUpEvent): Promise<void> {
      await ticks(1)
      handled.push(event.item)
    }
  }
  const broker = new InMemoryMessageBroker()
  const mediator = bootstrapStreaming({
    messageBroker: broker,
    requests: (map) => map.bind(RunCommand, PerItemHandler),
    events: (map) => map.bind(ItemEvent, Fanout).bind(ItemEvent, Echo).bind(FollowUpEvent, FollowUps),
  })
  const stream = mediator.stream(new RunCommand({ items: ['a', 'b'] }))
  t.equal((await stream.next()).done, false)
  t.same(handled.toSorted(), ['echo-a', 'fanout-a'], 'the follow-ups of both handlers were handled before the item arrived')
  t.same(broker.messages.map((m) => m.messageId), ['shipped-a'])
  t.same(itemsOf(await collect(stream)), ['b'])
  t.same(handled.toSorted(), ['echo-a', 'echo-b', 'fanout-a', 'fanout-b'])
  t.same(broker.messages.map((m) => m.messageId), ['shipped-a', 'shipped-b'])
  t.ok(eventHandlers.every((handler) => handler.events.length === 0), 'no follow-up is left behind')
})

t.test('a failing event handler is isolated by default', async (t) => {
  for (const mode of modes) {
    t.test(mode.name, async (t) => {
      const boom = new Error('event handler failed')
      const siblings: string[] = []
      const hookCalls: Array<[unknown, EventHandlerErrorInfo]> = []
      class FailingHandler extends EventHandler<ItemEvent> {
        handle (): void { throw boom }
      }
      class Sibling extends EventHandler<ItemEvent> {
        async handle (event: ItemEvent): Promise<void> {
          await ticks(2)
          siblings.push(event.item)
        }
      }
      const logger = new RecordingLogger()
      const mediator = bootstrapStreaming({
        logger,
        concurrentEventHandling: mode.concurrentEventHandling,
        onEventHandlerError: (error, info) => { hookCalls.push([error, info]) },
        requests: (map) => map.bind(RunCommand, PerItemHandler),
        events: (map) => map.bind(ItemEvent, FailingHandler).bind(ItemEvent, Sibling),
      })
      const stream = mediator.stream(new RunCommand({ items: ['a', 'b'] }), { streamId: 'iso' })
      const received: string[] = []
      for await (const result of stream) {
        received.push((result as ItemResult).item)
        t.same(siblings, received, 'the sibling handler completed before the item arrived')
      }
      t.same(received, ['a', 'b'], 'the stream went on')
      t.equal(logger.errors.length, 2)
      t.match(logger.errors[0], {
        object: { err: boom, eventName: 'ItemEvent', handlerName: 'FailingHandler', streamId: 'iso' },
        message: /FailingHandler.*ItemEvent/,
      })
      t.equal(hookCalls.length, 2)
      const [error, info] = hookCalls[0]!
      t.equal(error, boom, 'the hook got the error')
      t.same(info, { event: new ItemEvent({ item: 'a' }), eventName: 'ItemEvent', handlerName: 'FailingHandler', streamId: 'iso' })
      t.type(info.event, ItemEvent)
    })
  }
  t.end()
})

t.test('a throwing onEventHandlerError hook is logged, not fatal', async (t) => {
  const boom = new Error('event handler failed')
  const hookErrors = [new Error('sync hook failure'), new Error('async hook failure')]
  let call = 0
  class FailingHandler extends EventHandler<ItemEvent> {
    async handle (): Promise<void> { throw boom }
  }
  const logger = new RecordingLogger()
  const mediator = bootstrapStreaming({
    logger,
    onEventHandlerError: (): void | Promise<void> => {
      const hookError = hookErrors[call++]
      if (call === 1) throw hookError
      return Promise.reject(hookError)
    },
    requests: (map) => map.bind(RunCommand, PerItemHandler),
    events: (map) => map.bind(ItemEvent, FailingHandler),
  })
  t.same(itemsOf(await collect(mediator.stream(new RunCommand({ items: ['a', 'b'] })))), ['a', 'b'])
  t.same(logger.errors.map((entry) => entry.object.err), [boom, hookErrors[0], boom, hookErrors[1]])
  t.match(logger.errors[1], { object: { handlerName: 'FailingHandler' }, message: /onEventHandlerError threw/ })
})

t.test('eventHandlerFailure fail-stream fails the stream after the round settles', async (t) => {
  for (const mode of modes) {
    t.test(mode.name, async (t) => {
      const boom = new Error('event handler failed')
      let slowDone = false
      let handlerFinally = false
      const hookCalls: string[] = []
      // In sequential mode the slow sibling runs first; concurrently they run together.
      class SlowSibling extends EventHandler<ItemEvent> {
        async handle (): Promise<void> {
          await ticks(3)
          slowDone = true
        }
      }
      class FailingHandler extends EventHandler<ItemEvent> {
        async handle (): Promise<void> {
          await ticks(1)
          throw boom
        }
      }
      class Guarded extends StreamingRequestHandler<RunCommand, ItemResult> {
        async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
          try {
            for (const item of command.items) {
              this.emit(new ItemEvent({ item }))
              yield new ItemResult({ item })
            }
          } finally {
            handlerFinally = true
          }
        }
      }
      const logger = new RecordingLogger()
      const mediator = bootstrapStreaming({
        logger,
        eventHandlerFailure: 'fail-stream',
        concurrentEventHandling: mode.concurrentEventHandling,
        onEventHandlerError: (_error, info) => { hookCalls.push(info.handlerName) },
        requests: (map) => map.bind(RunCommand, Guarded),
        events: (map) => map.bind(ItemEvent, SlowSibling).bind(ItemEvent, FailingHandler),
      })
      const stream = mediator.stream(new RunCommand({ items: ['a', 'b'] }))
      const error = await stream.next().then(() => undefined, (error: unknown) => error)
      t.match(error, { code: FAILED, statusCode: 500, message: /FailingHandler.*ItemEvent/ }, 'the item never arrives')
      t.equal((error as Error).cause, boom, 'the handler\'s error is the cause')
      t.ok(slowDone, 'the sibling finished before the stream failed')
      t.ok(handlerFinally, 'the streaming handler\'s finally ran')
      t.same(hookCalls, ['FailingHandler'], 'the failure was still reported')
      t.equal(logger.errors.length, 1, 'and logged')
      t.equal(mediator.openStreams, 0)
      t.same(await stream.next(), DONE)
    })
  }
  t.end()
})

t.test('a failing broker send is reported as handler "messageBroker"', async (t) => {
  const brokerError = new Error('broker down')
  class FailingBroker implements MessageBroker {
    async send (): Promise<void> { throw brokerError }
  }
  class Shipping extends StreamingRequestHandler<RunCommand, ItemResult> {
    async * handle (command: RunCommand): AsyncGenerator<ItemResult> {
      for (const item of command.items) {
        this.emit(new ItemShipped({ item }))
        yield new ItemResult({ item })
      }
    }
  }

  t.test('isolated by default', async (t) => {
    const hookCalls: EventHandlerErrorInfo[] = []
    const logger = new RecordingLogger()
    const mediator = bootstrapStreaming({
      logger,
      messageBroker: new FailingBroker(),
      onEventHandlerError: (_error, info) => { hookCalls.push(info) },
      requests: (map) => map.bind(RunCommand, Shipping),
    })
    t.same(itemsOf(await collect(mediator.stream(new RunCommand({ items: ['a'] }), { streamId: 'b1' }))), ['a'])
    t.match(hookCalls, [{ eventName: 'ItemShipped', handlerName: 'messageBroker', streamId: 'b1' }])
    t.match(logger.errors, [{ object: { err: brokerError, eventName: 'ItemShipped', handlerName: 'messageBroker' } }])
  })

  for (const mode of modes) {
    t.test(`fail-stream, ${mode.name}`, async (t) => {
      const mediator = bootstrapStreaming({
        logger: new RecordingLogger(),
        messageBroker: new FailingBroker(),
        eventHandlerFailure: 'fail-stream',
        concurrentEventHandling: mode.concurrentEventHandling,
        requests: (map) => map.bind(RunCommand, Shipping),
      })
      const error = await collect(mediator.stream(new RunCommand({ items: ['a'] }))).then(() => undefined, (error: unknown) => error)
      t.match(error, { code: FAILED, message: /messageBroker.*ItemShipped/ })
      t.equal((error as Error).cause, brokerError)
    })
  }
  t.end()
})
