import t from 'tap'
import { asClass, createContainer } from 'awilix'
import {
  bootstrapStreaming, EventHandler, StreamingRequestHandler,
  type RequestMessage, type StreamContext, type StreamMiddleware, type StreamingMediatorOptions,
} from '../src/index.js'
import { collect, ItemEvent, ItemResult, itemsOf, RunCommand } from './fixtures/mediator-kit.js'

const DONE = { done: true, value: undefined }

/** What the handler and the event handler did in one test. */
interface Trace {
  readonly log: string[]
  readonly handled: string[]
  readonly contexts: StreamContext[]
  readonly disposed: () => boolean
  /** How many streaming handlers (and so scoped resources) were built. */
  readonly built: () => number
}

/**
 * A mediator whose handler yields one ItemResult per item (emitting an
 * ItemEvent for each), logs 'handler:start' / 'handler:finally', throws on
 * the item 'throw', and resolves a scoped disposable.
 */
function setup (middlewares: StreamMiddleware[], options: Partial<StreamingMediatorOptions> = {}): Trace & {
  mediator: ReturnType<typeof bootstrapStreaming>
} {
  const log: string[] = []
  const handled: string[] = []
  const contexts: StreamContext[] = []
  let disposed = false
  let built = 0
  class Resource {}
  class Recorder extends EventHandler<ItemEvent> {
    handle (event: ItemEvent): void { handled.push(event.item) }
  }
  class Producer extends StreamingRequestHandler<RunCommand, ItemResult> {
    readonly #resource: Resource
    // Resolved at construction, so the scope always holds something to dispose.
    constructor (deps: { resource: Resource }) {
      super()
      built++
      this.#resource = deps.resource
    }

    async * handle (command: RunCommand, context: StreamContext): AsyncGenerator<ItemResult> {
      contexts.push(context)
      log.push(`handler:start:${String(this.#resource instanceof Resource)}`)
      try {
        for (const item of command.items) {
          if (item === 'throw') throw new Error('handler failed')
          this.emit(new ItemEvent({ item }))
          yield new ItemResult({ item })
        }
      } finally {
        log.push('handler:finally')
      }
    }
  }
  const mediator = bootstrapStreaming({
    container: createContainer().register({
      resource: asClass(Resource).scoped().disposer(() => { disposed = true }),
    }),
    requests: (map) => map.bind(RunCommand, Producer),
    events: (map) => map.bind(ItemEvent, Recorder),
    middlewares,
    ...options,
  })
  return { mediator, log, handled, contexts, disposed: () => disposed, built: () => built }
}

/** A middleware that logs what passes through it and maps each item with `map`. */
function tracing (name: string, log: string[], map: (item: string) => string = (item) => item): StreamMiddleware {
  return async function * (_request, next) {
    log.push(`${name}:before`)
    try {
      for await (const result of next()) {
        log.push(`${name}:item`)
        yield new ItemResult({ item: map((result as ItemResult).item) })
      }
    } finally {
      log.push(`${name}:finally`)
    }
  }
}

t.test('middlewares wrap every stream in order, the first outermost', async (t) => {
  const log: string[] = []
  const fx = setup([
    tracing('outer', log, (item) => `${item}!`),
    tracing('inner', log, (item) => item.toUpperCase()),
  ])
  const stream = fx.mediator.stream(new RunCommand({ items: ['a', 'b'] }))
  t.same(log, [], 'nothing runs before the first pull')
  t.same(itemsOf(await collect(stream)), ['A!', 'B!'], 'the inner middleware maps first')
  t.same(log, [
    'outer:before', 'inner:before',
    'inner:item', 'outer:item',
    'inner:item', 'outer:item',
    'inner:finally', 'outer:finally',
  ])
  t.same(fx.log, ['handler:start:true', 'handler:finally'])

  const second = await collect(fx.mediator.stream(new RunCommand({ items: ['c'] })))
  t.same(itemsOf(second), ['C!'], 'and every later stream')
})

t.test('a middleware can filter items; events of dropped items were still handled', async (t) => {
  const evenOnly: StreamMiddleware = async function * (_request, next) {
    let index = 0
    for await (const result of next()) if (index++ % 2 === 0) yield result
  }
  const fx = setup([evenOnly])
  t.same(itemsOf(await collect(fx.mediator.stream(new RunCommand({ items: ['a', 'b', 'c', 'd'] })))), ['a', 'c'])
  t.same(fx.handled, ['a', 'b', 'c', 'd'], 'events are handled inside the middlewares, before they see an item')
})

t.test('a middleware sees the request and the stream\'s context', async (t) => {
  const seen: Array<{ request: RequestMessage, context: StreamContext }> = []
  const spy: StreamMiddleware = (request, next, context) => {
    seen.push({ request, context })
    return next()
  }
  const fx = setup([spy, spy])
  const command = new RunCommand({ items: ['a'] })
  const stream = fx.mediator.stream(command, { streamId: 'mw-1' })
  t.same(itemsOf(await collect(stream)), ['a'])
  t.equal(seen.length, 2)
  for (const { request, context } of seen) {
    t.equal(request, command, 'the command given to stream()')
    t.equal(context, fx.contexts[0], 'the handler\'s own context')
    t.equal(context.streamId, 'mw-1')
  }
  t.equal(seen[0]?.context.signal.aborted, true, 'whose signal aborts when the stream ends')
})

t.test('a middleware can short-circuit by not calling next', async (t) => {
  const deny: StreamMiddleware = async function * () {
    yield new ItemResult({ item: 'denied' })
  }
  const log: string[] = []
  const fx = setup([tracing('outer', log), deny])
  t.same(itemsOf(await collect(fx.mediator.stream(new RunCommand({ items: ['a', 'b'] })))), ['denied'])
  t.same(fx.log, [], 'the handler never ran')
  t.same(fx.handled, [])
  t.same(log, ['outer:before', 'outer:item', 'outer:finally'])
  t.equal(fx.built(), 0, 'the handler and its dependencies were never built')
  t.notOk(fx.disposed(), 'so there was nothing scoped to dispose')
  t.equal(fx.mediator.openStreams, 0)
})

t.test('errors thrown in a middleware reach the consumer', async (t) => {
  t.test('before calling next', async (t) => {
    const forbidden = Object.assign(new Error('forbidden'), { code: 'MY_FORBIDDEN' })
    const guard: StreamMiddleware = () => { throw forbidden }
    const fx = setup([guard])
    const stream = fx.mediator.stream(new RunCommand({ items: ['a'] }))
    await t.rejects(stream.next(), forbidden)
    t.same(fx.log, [], 'the handler never ran')
    t.equal(fx.built(), 0, 'nor was it built')
    t.equal(fx.mediator.openStreams, 0)
    t.same(await stream.next(), DONE)
  })

  t.test('in the middle of the stream', async (t) => {
    const limitError = new Error('too many items')
    const atMostOne: StreamMiddleware = async function * (_request, next) {
      let count = 0
      for await (const result of next()) {
        if (++count > 1) throw limitError
        yield result
      }
    }
    const fx = setup([atMostOne])
    const stream = fx.mediator.stream(new RunCommand({ items: ['a', 'b', 'c'] }))
    t.same(itemsOf([(await stream.next()).value]), ['a'])
    await t.rejects(stream.next(), limitError)
    t.same(fx.log, ['handler:start:true', 'handler:finally'], 'the handler was returned')
    t.same(fx.handled, ['a', 'b'])
    t.ok(fx.disposed())
    t.equal(fx.contexts[0]?.signal.aborted, true)
  })

  t.test('errors of the handler pass through middlewares, which may recover', async (t) => {
    const log: string[] = []
    const fallback: StreamMiddleware = async function * (_request, next) {
      try {
        yield * next()
      } catch (error) {
        yield new ItemResult({ item: `recovered from ${(error as Error).message}` })
      }
    }
    const plain = setup([tracing('outer', log)])
    await t.rejects(collect(plain.mediator.stream(new RunCommand({ items: ['a', 'throw'] }))), { message: 'handler failed' })
    t.same(log, ['outer:before', 'outer:item', 'outer:finally'])

    const recovering = setup([fallback])
    t.same(itemsOf(await collect(recovering.mediator.stream(new RunCommand({ items: ['a', 'throw'] })))),
      ['a', 'recovered from handler failed'])
    t.same(recovering.log, ['handler:start:true', 'handler:finally'])
  })

  t.end()
})

t.test('a middleware\'s finally runs when the consumer breaks', async (t) => {
  const log: string[] = []
  const fx = setup([tracing('outer', log), tracing('inner', log)])
  const received: string[] = []
  for await (const result of fx.mediator.stream<ItemResult>(new RunCommand({ items: ['a', 'b', 'c'] }))) {
    received.push(result.item)
    if (received.length === 1) break
  }
  t.same(received, ['a'])
  t.same(fx.log, ['handler:start:true', 'handler:finally'])
  t.same(log, ['outer:before', 'inner:before', 'inner:item', 'outer:item', 'inner:finally', 'outer:finally'],
    'inner then outer finally, after the handler\'s')
  t.ok(fx.disposed())
  t.equal(fx.contexts[0]?.signal.aborted, true)
  t.equal(fx.mediator.openStreams, 0)
})

t.test('the middlewares array is copied when the mediator is built', async (t) => {
  const log: string[] = []
  const middlewares = [tracing('first', log)]
  const fx = setup(middlewares)
  middlewares.push(tracing('late', log))
  await collect(fx.mediator.stream(new RunCommand({ items: ['a'] })))
  t.same(log, ['first:before', 'first:item', 'first:finally'])
})
