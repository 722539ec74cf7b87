// Type tests of the plugin: options, decorators and route helper (see expect.ts).
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { createContainer } from 'awilix'
import fastifyCqrsStreamDefault, {
  fastifyCqrsStream, InMemoryMessageBroker, Request, Response, StreamingRequestHandler,
  InMemoryStreamStore, type FastifyCqrsStreamOptions, type ResumeSettings, type StoredStream, type StreamStore,
  type StreamingRequestMediator, type StreamMiddleware, type TwoStepSettings,
} from '../../src/index.js'
import { expectAssignable, expectTrue, use, type Equal } from './expect.js'

class Tick extends Request(Type.Object({ count: Type.Integer() })) {}
class Ticked extends Response(Type.Object({ n: Type.Integer() })) {}
class TickHandler extends StreamingRequestHandler<Tick, Ticked> {
  async * handle (request: Tick) { for (let n = 0; n < request.count; n++) yield new Ticked({ n }) }
}

// One plugin, two names; a Fastify plugin taking FastifyCqrsStreamOptions.
expectTrue<Equal<typeof fastifyCqrsStreamDefault, typeof fastifyCqrsStream>>()
expectAssignable<FastifyPluginAsync<FastifyCqrsStreamOptions>>(fastifyCqrsStream)

const logging: StreamMiddleware = async function * (_request, next, { streamId }) {
  expectTrue<Equal<typeof streamId, string>>()
  yield * next()
}

export async function register (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyCqrsStream, {
    container: createContainer({ strict: true }),
    requests: (map) => map.bind(Tick, TickHandler),
    events: (map) => map,
    messageBroker: new InMemoryMessageBroker(),
    maxConcurrentEventHandlers: 4,
    concurrentEventHandling: false,
    middlewares: [logging],
    eventHandlerFailure: 'fail-stream',
    onEventHandlerError: (error, { handlerName, streamId }) => { use(error, handlerName, streamId) },
    heartbeatMs: 0,
    namedEvents: true,
    retryMs: 1000,
    closeTimeoutMs: 500,
  })
  await app.register(fastifyCqrsStreamDefault)
  await app.register(fastifyCqrsStream, {})

  // @ts-expect-error maxConcurrentEventHandlers is a number
  await app.register(fastifyCqrsStream, { maxConcurrentEventHandlers: '10' })
  // @ts-expect-error concurrentEventHandling is a boolean
  await app.register(fastifyCqrsStream, { concurrentEventHandling: 'yes' })
  // @ts-expect-error eventHandlerFailure is 'isolate' or 'fail-stream'
  await app.register(fastifyCqrsStream, { eventHandlerFailure: 'ignore' })
  // @ts-expect-error a broker needs send(message)
  await app.register(fastifyCqrsStream, { messageBroker: {} })
  // @ts-expect-error middlewares is an array of functions
  await app.register(fastifyCqrsStream, { middlewares: logging })
  // @ts-expect-error heartbeatMs is a number of ms
  await app.register(fastifyCqrsStream, { heartbeatMs: '15s' })
  // @ts-expect-error no such option
  await app.register(fastifyCqrsStream, { maxConcurrency: 4 })
  // @ts-expect-error requests is a function of the map
  await app.register(fastifyCqrsStream, { requests: [[Tick, TickHandler]] })
  return app
}

export function decorators (app: FastifyInstance): void {
  // app.mediator: the streaming mediator; stream() gives an async iterable.
  expectTrue<Equal<typeof app.mediator, StreamingRequestMediator>>()
  const stream = app.mediator.stream<Ticked>(new Tick({ count: 2 }))
  expectAssignable<AsyncIterable<Ticked>>(stream)
  expectAssignable<AsyncIterable<unknown>>(app.mediator.stream(new Tick({ count: 2 })))
  // @ts-expect-error the request is an instance, not the class
  app.mediator.stream(Tick)

  // app.streamRoute: GET or POST, a request class, optional response class; chainable.
  const chained = app
    .streamRoute({ method: 'POST', url: '/ticks', request: Tick, response: Ticked })
    .streamRoute({ method: 'GET', url: '/ticks', request: Tick, eventStream: { heartbeatMs: 5000, namedEvents: true } })
  expectAssignable<FastifyInstance>(chained)
  app.streamRoute({
    method: 'POST',
    url: '/ticks/:room',
    request: Tick,
    schema: { params: Type.Object({ room: Type.String() }) },
    onRequest: async (request) => { use(request.id) },
    bodyLimit: 1024,
  })
  // @ts-expect-error only GET and POST stream
  app.streamRoute({ method: 'PUT', url: '/ticks', request: Tick })
  // @ts-expect-error the request option is a Request() class
  app.streamRoute({ method: 'POST', url: '/ticks', request: Ticked })
  // @ts-expect-error the command comes from the request class, not a body schema
  app.streamRoute({ method: 'POST', url: '/ticks', request: Tick, schema: { body: Tick.schema } })
  // @ts-expect-error url is required
  app.streamRoute({ method: 'POST', request: Tick })
  // @ts-expect-error eventStream settings are typed
  app.streamRoute({ method: 'GET', url: '/ticks', request: Tick, eventStream: { namedEvents: 1 } })

  // resume and twoStep: true or their settings.
  app.streamRoute({ method: 'GET', url: '/r', request: Tick, resume: true })
  app.streamRoute({ method: 'GET', url: '/r2', request: Tick, resume: { windowMs: 10_000, maxBufferedFrames: 100 } satisfies ResumeSettings })
  app.streamRoute({ method: 'POST', url: '/t', request: Tick, twoStep: { claimTimeoutMs: 5000 } satisfies TwoStepSettings, resume: { windowMs: 1 } })
  // @ts-expect-error resume settings are typed
  app.streamRoute({ method: 'GET', url: '/r3', request: Tick, resume: { windowMs: '30s' } })
  // @ts-expect-error twoStep is true or settings
  app.streamRoute({ method: 'POST', url: '/t2', request: Tick, twoStep: 'yes' })
  // caller: a function of the request, sync or async.
  app.streamRoute({ method: 'POST', url: '/c', request: Tick, twoStep: true, caller: (request) => ({ ip: request.ip }) })
  app.streamRoute({ method: 'GET', url: '/c2', request: Tick, caller: async (request) => request.headers['x-user'] })
  // @ts-expect-error caller is a function
  app.streamRoute({ method: 'GET', url: '/c3', request: Tick, caller: 'alice' })

  // reply.eventStream: an async iterable, or a function of { signal, streamId } building one.
  app.get('/iterable', (_request, reply) => {
    const replied = reply.eventStream(app.mediator.stream(new Tick({ count: 3 })))
    expectTrue<Equal<typeof replied, FastifyReply>>()
    return replied
  })
  app.get('/function', (request, reply) => reply.eventStream(async function * ({ signal, streamId }) {
    expectTrue<Equal<typeof signal, AbortSignal>>()
    expectTrue<Equal<typeof streamId, string>>()
    for (let i = 0; i < 3 && !signal.aborted; i++) yield { tick: i, streamId }
  }, { heartbeatMs: 5000, namedEvents: true, retryMs: 3000, streamId: request.id, restartOnReconnect: true }))
  app.get('/serialize', (_request, reply) => reply.eventStream(
    app.mediator.stream<Ticked>(new Tick({ count: 3 })),
    { serialize: (item) => `{"n":${item.n}}` }))
  app.get('/bad', (_request, reply) => {
    // @ts-expect-error a plain array is not an async iterable
    reply.eventStream([1, 2, 3])
    // @ts-expect-error a source function returns an async iterable
    reply.eventStream(() => [1, 2, 3])
    // @ts-expect-error options are typed
    reply.eventStream(app.mediator.stream(new Tick({ count: 1 })), { heartbeatMs: '5s' })
    // @ts-expect-error the serialiser takes the item type
    reply.eventStream(app.mediator.stream<Ticked>(new Tick({ count: 1 })), { serialize: (item: string) => item })
  })
}

// The imperative route of the design: with the TypeBox type provider the
// validated body is the request class's data.
export function typeProvider (app: FastifyInstance): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>()
  typed.post('/ticks/raw', { schema: { body: Tick.schema } }, (request, reply) => {
    expectTrue<Equal<typeof request.body, { count: number }>>()
    return reply.eventStream(typed.mediator.stream(new Tick(request.body)))
  })
  typed.post('/ticks/raw-wrong', { schema: { body: Ticked.schema } }, (request, reply) =>
    // @ts-expect-error a Ticked body is no Tick
    reply.eventStream(typed.mediator.stream(new Tick(request.body))))
}

// A StreamStore may answer synchronously (the in-memory one) or with promises (a shared one).
export function streamStores (): void {
  expectAssignable<StreamStore>(new InMemoryStreamStore())
  const asyncStore: StreamStore = {
    async open () {},
    async append () {},
    async read (): Promise<StoredStream | undefined> { return { scope: '/x', frames: [{ seq: 0, text: 'id: x:0\ndata: {}\n\n' }], ended: false } },
    async end () {},
    async delete () {},
  }
  expectAssignable<FastifyCqrsStreamOptions>({ streamStore: asyncStore })
  // @ts-expect-error a store needs every method
  expectAssignable<FastifyCqrsStreamOptions>({ streamStore: { open () {} } })
  // @ts-expect-error frames carry their seq
  expectAssignable<StoredStream>({ scope: '/x', frames: [{ text: '' }], ended: true })
}
