import t from 'tap'
import { Type } from '@sinclair/typebox'
import { asValue, createContainer } from 'awilix'
import {
  bootstrapStreaming, DomainEvent, EventHandler, NotificationEvent, Request, StreamingRequestHandler,
  type MediatorLogger, type StreamContext,
} from '../src/index.js'

class Run extends Request(Type.Object({ n: Type.Integer() })) {}
class Tick extends DomainEvent(Type.Object({ n: Type.Integer() })) {}

function recordingLogger (): MediatorLogger & { calls: string[] } {
  const calls: string[] = []
  return { calls, error: (_o, message) => { calls.push(`error:${message}`) }, warn: (_o, message) => { calls.push(`warn:${message}`) } }
}

function abortable (signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
}

t.test('NotificationEvent refuses schemas that declare its own fields', async (t) => {
  for (const field of ['topic', 'eventId', 'occurredAt', 'payload']) {
    t.throws(() => NotificationEvent('t', Type.Object({ [field]: Type.String() })), { code: 'FST_ERR_CQRS_STREAM_RESERVED_FIELD' }, field)
  }
})

t.test('an event handler that stops because the stream was aborted is not reported as failing', async (t) => {
  for (const how of ['reason', 'AbortError'] as const) {
    t.test(how, async (t) => {
      const logger = recordingLogger()
      const reported: unknown[] = []
      let entered!: () => void
      const inHandler = new Promise<void>((resolve) => { entered = resolve })
      class Waits extends EventHandler<Tick> {
        async handle (_event: Tick, { signal }: StreamContext): Promise<void> {
          entered()
          if (how === 'reason') await abortable(signal)
          await abortable(signal).catch(() => { throw Object.assign(new Error('stopped'), { name: 'AbortError' }) })
        }
      }
      class Emits extends StreamingRequestHandler<Run, number> {
        async * handle (command: Run): AsyncGenerator<number> {
          this.emit(new Tick({ n: command.n }))
          yield command.n
        }
      }
      const mediator = bootstrapStreaming({
        logger,
        onEventHandlerError: (error) => { reported.push(error) },
        requests: (map) => map.bind(Run, Emits),
        events: (map) => map.bind(Tick, Waits),
      })
      const stream = mediator.stream(new Run({ n: 1 }))
      const pulled = stream.next()
      await inHandler
      await stream.return()
      t.same(await pulled, { done: false, value: 1 }, 'the item in production is still delivered')
      t.same(logger.calls, [])
      t.same(reported, [])
    })
  }
})

t.test('a handler that returns quietly after an external abort still fails the pending pull', async (t) => {
  const controller = new AbortController()
  class Quits extends StreamingRequestHandler<Run, number> {
    async * handle (_command: Run, { signal }: StreamContext): AsyncGenerator<number> {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
    }
  }
  const mediator = bootstrapStreaming({ requests: (map) => map.bind(Run, Quits) })
  const stream = mediator.stream(new Run({ n: 1 }), { signal: controller.signal })
  const pulled = stream.next()
  controller.abort()
  await t.rejects(pulled, { code: 'FST_ERR_CQRS_STREAM_ABORTED' })
})

t.test('values given to stream() cannot replace the stream\'s signal and streamId', async (t) => {
  const seen: unknown[] = []
  class Reads extends StreamingRequestHandler<Run, number> {
    constructor (deps: { signal: AbortSignal, streamId: string, extra: string }) {
      super()
      seen.push(deps.signal instanceof AbortSignal, deps.streamId, deps.extra)
    }

    async * handle (): AsyncGenerator<number> { yield 1 }
  }
  const mediator = bootstrapStreaming({ requests: (map) => map.bind(Run, Reads) })
  const stream = mediator.stream(new Run({ n: 1 }), { streamId: 'own', values: { signal: 'fake', streamId: 'fake', extra: 'x' } })
  t.same(await stream.next(), { done: false, value: 1 })
  t.same(seen, [true, 'own', 'x'])
})

t.test('a `constructor` field in message data does not redirect handler lookups', async (t) => {
  const handled: number[] = []
  class Counts extends EventHandler<Tick> {
    handle (event: Tick): void { handled.push(event.n) }
  }
  class Emits extends StreamingRequestHandler<Run, number> {
    async * handle (command: Run): AsyncGenerator<number> {
      this.emit(new Tick({ n: command.n, constructor: 'x' } as never))
      yield command.n
    }
  }
  const mediator = bootstrapStreaming({
    container: createContainer().register({ unused: asValue(0) }),
    requests: (map) => map.bind(Run, Emits),
    events: (map) => map.bind(Tick, Counts),
  })
  const results: number[] = []
  for await (const n of mediator.stream<number>(new Run({ n: 7, constructor: 'y' } as never))) results.push(n)
  t.same(results, [7])
  t.same(handled, [7])
})
