// Sagas as streaming commands: each step a progress frame; a failure at any
// step compensates exactly the completed steps, last first; compensation
// retries and its terminal failure; cancel mid-saga; the stored state and
// step log of each case.
import { Type } from '@sinclair/typebox'
import { asValue, createContainer } from 'awilix'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import fastifyCqrsStream, {
  DomainEvent, EventHandler, InMemorySagaStorage, Request, Saga, SagaHandler, SagaProgressSchema, SagaStep, type SagaStepRun, type SagaStorage,
} from '../src/index.js'
import { parseSse, payload } from './fixtures/sse-parser.js'
import { eventually } from './fixtures/sse-client.js'

// The test's knobs travel in the context: the step whose act fails (0:
// none), how many times each compensation fails first, the step whose act
// waits until the stream is aborted.
const TripContext = Type.Object({
  tripId: Type.String(),
  failAt: Type.Integer(),
  compensationFailures: Type.Integer(),
  waitAt: Type.Integer(),
  booked: Type.Array(Type.String()),
})
type Trip = typeof TripContext.static

class BookTripCommand extends Request(Type.Object({
  tripId: Type.String(),
  failAt: Type.Integer({ default: 0 }),
  compensationFailures: Type.Integer({ default: 0 }),
  waitAt: Type.Integer({ default: 0 }),
}), { result: SagaProgressSchema }) {}

class TripBooked extends DomainEvent(Type.Object({ tripId: Type.String(), step: Type.String() })) {}

/** What the steps did, in order. */
class Travel {
  readonly calls: string[] = []
  readonly events: string[] = []
  readonly failuresLeft = new Map<string, number>()
  /** Called when a step starts waiting (waitAt), with the saga's id. */
  waiting: ((sagaId: string) => void) | undefined
}

abstract class TravelStep extends SagaStep<Trip, { ref: string }> {
  abstract readonly position: number
  readonly travel: Travel
  constructor ({ travel }: { travel: Travel }) {
    super()
    this.travel = travel
  }

  async act (trip: Trip, { sagaId, signal, attempt }: SagaStepRun): Promise<{ ref: string }> {
    const name = this.constructor.name
    this.travel.calls.push(`act ${name}`)
    if (trip.waitAt === this.position) {
      this.travel.waiting?.(sagaId)
      await new Promise<void>((_resolve, reject) => {
        signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      })
    }
    if (trip.failAt === this.position) throw new Error(`${name} is full`)
    // A step may throw anything.
    const notAnError: unknown = `${name} said no`
    if (trip.failAt === -this.position) throw notAnError
    trip.booked.push(name)
    this.emit(new TripBooked({ tripId: trip.tripId, step: name }))
    return { ref: `${sagaId}:${name}:${attempt}` }
  }

  async compensate (trip: Trip, result: { ref: string }, { attempt, signal }: SagaStepRun): Promise<void> {
    const name = this.constructor.name
    this.travel.calls.push(`compensate ${name} ${attempt}`)
    if (signal.aborted) throw new Error('a compensation got an aborted signal')
    const left = this.travel.failuresLeft.get(name) ?? trip.compensationFailures
    if (left > 0) {
      this.travel.failuresLeft.set(name, left - 1)
      throw new Error(`cannot undo ${result.ref}`)
    }
    trip.booked.splice(trip.booked.indexOf(name), 1)
  }
}
class ReserveHotel extends TravelStep { readonly position = 1 }
class ReserveFlight extends TravelStep { readonly position = 2 }
class ChargeCard extends TravelStep { readonly position = 3 }

class BookTripSaga extends Saga(TripContext)<BookTripCommand> {
  readonly steps = [ReserveHotel, ReserveFlight, ChargeCard]
  override readonly compensation = { attempts: 3, delayMs: 1, maxDelayMs: 4 }

  begin ({ tripId, failAt, compensationFailures, waitAt }: BookTripCommand): Trip {
    return { tripId, failAt, compensationFailures, waitAt, booked: [] }
  }
}

class TripBookedHandler extends EventHandler<TripBooked> {
  constructor (private readonly deps: { travel: Travel }) { super() }
  async handle (event: TripBooked): Promise<void> { this.deps.travel.events.push(event.step) }
}

interface Rig { app: FastifyInstance, travel: Travel, storage: InMemorySagaStorage }

async function rig (t: Test): Promise<Rig> {
  const travel = new Travel()
  const storage = new InMemorySagaStorage()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, {
    container: createContainer({ strict: true }).register({ travel: asValue(travel), sagaStorage: asValue(storage) }),
    requests: (map) => map.bind(BookTripCommand, BookTripSaga),
    events: (map) => map.bind(TripBooked, TripBookedHandler),
    heartbeatMs: 0,
  })
  app.streamRoute({ method: 'POST', url: '/trips', request: BookTripCommand, resume: true })
  return { app, travel, storage }
}

interface Run { streamId: string, payloads: Array<{ type: string, [key: string]: unknown }> }

async function book (app: FastifyInstance, body: Record<string, unknown>): Promise<Run> {
  const response = await app.inject({ method: 'POST', url: '/trips', payload: { tripId: 't1', ...body } })
  const payloads = parseSse(response.body).frames.map(payload)
  return { streamId: payloads[0]!.streamId as string, payloads }
}

const done = (step: string, streamId: string): object => ({ type: 'progress', data: { step, status: 'done', result: { ref: `${streamId}:${step}:1` } } })
const undoing = (step: string): object[] => [
  { type: 'progress', data: { step, status: 'compensating' } },
  { type: 'progress', data: { step, status: 'compensated' } },
]

t.test('happy path: a done frame per step, then complete; stored completed, with its log and context', async (t) => {
  const { app, travel, storage } = await rig(t)
  const { streamId, payloads } = await book(app, {})
  t.same(payloads.slice(1), [done('ReserveHotel', streamId), done('ReserveFlight', streamId), done('ChargeCard', streamId), { type: 'complete' }])
  t.same(travel.calls, ['act ReserveHotel', 'act ReserveFlight', 'act ChargeCard'])
  t.same(travel.events, ['ReserveHotel', 'ReserveFlight', 'ChargeCard'], 'each step\'s events handled before its frame')
  const execution = await storage.load(streamId)
  t.match(execution, { id: streamId, saga: 'BookTripSaga', status: 'completed', completed: 3, compensated: 0, context: { tripId: 't1', booked: ['ReserveHotel', 'ReserveFlight', 'ChargeCard'] } })
  t.same((await storage.log(streamId)).map((e) => `${e.step} ${e.status}`), [
    'BookTripSaga acting',
    'ReserveHotel acting', 'ReserveHotel done', 'ReserveFlight acting', 'ReserveFlight done', 'ChargeCard acting', 'ChargeCard done',
    'BookTripSaga done',
  ])
  t.equal(execution!.version, 7, 'one save per log entry after create')
})

for (const [failAt, failed] of [[1, 'ReserveHotel'], [2, 'ReserveFlight'], [3, 'ChargeCard']] as const) {
  t.test(`a failure at step ${failAt} (${failed}) compensates exactly the completed steps, last first`, async (t) => {
    const { app, travel, storage } = await rig(t)
    const { streamId, payloads } = await book(app, { failAt })
    const names = ['ReserveHotel', 'ReserveFlight', 'ChargeCard']
    const completed = names.slice(0, failAt - 1)
    t.same(payloads.slice(1), [
      ...completed.map((step) => done(step, streamId)),
      ...[...completed].reverse().flatMap(undoing),
      {
        type: 'error',
        error: {
          code: 'FST_ERR_CQRS_STREAM_SAGA_COMPENSATED',
          message: `fastify-cqrs-stream: saga BookTripSaga stopped at step ${failed}, which failed; the ${completed.length} steps completed before it were undone. Nothing of the saga remains applied; the command may be retried.`,
        },
      },
    ])
    t.same(travel.calls, [...names.slice(0, failAt).map((n) => `act ${n}`), ...[...completed].reverse().map((n) => `compensate ${n} 1`)])
    t.match(await storage.load(streamId), { status: 'compensated', completed: failAt - 1, compensated: failAt - 1, error: `${failed} is full`, context: { booked: [] } })
    t.match((await storage.log(streamId)).at(-1), { step: 'BookTripSaga', status: 'compensated' })
    t.match((await storage.log(streamId)).find((e) => e.status === 'failed'), { step: failed, error: `${failed} is full` })
  })
}

t.test('a compensation that fails twice is retried with backoff and succeeds on its third try', async (t) => {
  const { app, travel, storage } = await rig(t)
  const { streamId, payloads } = await book(app, { failAt: 3, compensationFailures: 2 })
  t.same(payloads.slice(1, -1), [done('ReserveHotel', streamId), done('ReserveFlight', streamId), ...undoing('ReserveFlight'), ...undoing('ReserveHotel')])
  t.match(payloads.at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_SAGA_COMPENSATED' } })
  t.same(travel.calls.slice(3), ['compensate ReserveFlight 1', 'compensate ReserveFlight 2', 'compensate ReserveFlight 3', 'compensate ReserveHotel 1', 'compensate ReserveHotel 2', 'compensate ReserveHotel 3'])
  const failures = (await storage.log(streamId)).filter((e) => e.status === 'compensation-failed')
  t.same(failures.map((e) => [e.step, e.attempt, e.error]), [
    ['ReserveFlight', 1, `cannot undo ${streamId}:ReserveFlight:1`], ['ReserveFlight', 2, `cannot undo ${streamId}:ReserveFlight:1`],
    ['ReserveHotel', 1, `cannot undo ${streamId}:ReserveHotel:1`], ['ReserveHotel', 2, `cannot undo ${streamId}:ReserveHotel:1`],
  ])
  t.match(await storage.load(streamId), { status: 'compensated' })
})

t.test('a compensation that keeps failing: stored failed-compensation, the earlier steps not undone, a coded error frame', async (t) => {
  const { app, travel, storage } = await rig(t)
  const { streamId, payloads } = await book(app, { failAt: 3, compensationFailures: 5 })
  t.same(payloads.slice(1), [done('ReserveHotel', streamId), done('ReserveFlight', streamId), { type: 'progress', data: { step: 'ReserveFlight', status: 'compensating' } }, {
    type: 'error',
    error: {
      code: 'FST_ERR_CQRS_STREAM_SAGA_COMPENSATION_FAILED',
      message: 'fastify-cqrs-stream: saga BookTripSaga could not undo step ReserveFlight after its retries; it is stored as failed-compensation and needs an operator (see docs/sagas.md).',
    },
  }])
  t.same(travel.calls.slice(3), ['compensate ReserveFlight 1', 'compensate ReserveFlight 2', 'compensate ReserveFlight 3'], 'ReserveHotel is left for the operator')
  t.match(await storage.load(streamId), { status: 'failed-compensation', completed: 2, compensated: 0, error: `cannot undo ${streamId}:ReserveFlight:1` })
})

t.test('cancel mid-saga (DELETE while step 2 acts): step 2 is aborted, step 1 compensated, the stream ends cancelled', async (t) => {
  const { app, travel, storage } = await rig(t)
  const waiting = new Promise<string>((resolve) => { travel.waiting = resolve })
  const response = app.inject({ method: 'POST', url: '/trips', payload: { tripId: 't1', waitAt: 2 } })
  const streamId = await waiting
  const cancel = await app.inject({ method: 'DELETE', url: `/trips/${streamId}` })
  t.equal(cancel.statusCode, 204)
  const payloads = parseSse((await response).body).frames.map(payload)
  t.same(payloads.slice(1, 2), [done('ReserveHotel', streamId)])
  t.match(payloads.at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_CANCELLED' } })
  await eventually(() => travel.calls.includes('compensate ReserveHotel 1'), 'the compensation')
  t.same(travel.calls, ['act ReserveHotel', 'act ReserveFlight', 'compensate ReserveHotel 1'])
  t.match(await storage.load(streamId), { status: 'compensated', completed: 1, compensated: 1 })
})

t.test('a consumer that stops between items (break): the completed steps are compensated before return() ends', async (t) => {
  const { app, travel, storage } = await rig(t)
  const stream = app.mediator.stream(new BookTripCommand({ tripId: 't2', failAt: 0, compensationFailures: 0, waitAt: 0 }))
  const items = stream[Symbol.asyncIterator]()
  t.match((await items.next()).value, { step: 'ReserveHotel', status: 'done' })
  await items.return!()
  t.same(travel.calls, ['act ReserveHotel', 'compensate ReserveHotel 1'])
  t.match(await storage.load(stream.streamId), { status: 'compensated', completed: 1, compensated: 1, error: 'cancelled' })

  // Its compensation failing for good: stored, and the return() still ends.
  const failing = app.mediator.stream(new BookTripCommand({ tripId: 't3', failAt: 0, compensationFailures: 9, waitAt: 0 }))
  const more = failing[Symbol.asyncIterator]()
  await more.next()
  await more.return!()
  t.match(await storage.load(failing.streamId), { status: 'failed-compensation', compensated: 0 })
})

t.test('a signal aborted while the consumer holds an item: the next pull acts no further and compensates', async (t) => {
  const { app, travel, storage } = await rig(t)
  const controller = new AbortController()
  const stream = app.mediator.stream(new BookTripCommand({ tripId: 't4', failAt: 0, compensationFailures: 0, waitAt: 0 }), { signal: controller.signal })
  const items = stream[Symbol.asyncIterator]()
  await items.next()
  controller.abort()
  await t.rejects(items.next(), { code: 'FST_ERR_CQRS_STREAM_ABORTED' })
  t.same(travel.calls, ['act ReserveHotel', 'compensate ReserveHotel 1'])
  t.match(await storage.load(stream.streamId), { status: 'compensated' })
})

t.test('a step that throws a non-Error; a return() while a compensation frame is held: the compensation goes on to the end', async (t) => {
  const { app, travel, storage } = await rig(t)
  const { streamId, payloads } = await book(app, { failAt: -2 })
  t.match(payloads.at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_SAGA_COMPENSATED' } })
  t.match(await storage.load(streamId), { status: 'compensated', error: 'ReserveFlight said no' })
  travel.calls.length = 0
  const stream = app.mediator.stream(new BookTripCommand({ tripId: 't5', failAt: 3, compensationFailures: 0, waitAt: 0 }))
  const items = stream[Symbol.asyncIterator]()
  const pulled = [(await items.next()).value, (await items.next()).value, (await items.next()).value]
  t.match(pulled, [{ status: 'done' }, { status: 'done' }, { step: 'ReserveFlight', status: 'compensating' }])
  await items.return!()
  t.same(travel.calls, ['act ReserveHotel', 'act ReserveFlight', 'act ChargeCard', 'compensate ReserveFlight 1', 'compensate ReserveHotel 1'])
  t.match(await storage.load(stream.streamId), { status: 'compensated', compensated: 2, error: 'ChargeCard is full' })
})

t.test('a SagaHandler subclass without a context schema: its context is not checked', async (t) => {
  const travel = new Travel()
  class PlainCommand extends Request(Type.Object({ tripId: Type.String() })) {}
  class PlainSaga extends SagaHandler<PlainCommand, Trip> {
    readonly steps = [ReserveHotel]
    begin ({ tripId }: PlainCommand): Trip { return { tripId, failAt: 0, compensationFailures: 0, waitAt: 0, booked: [] } }
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, {
    container: createContainer({ strict: true }).register({ travel: asValue(travel) }),
    requests: (map) => map.bind(PlainCommand, PlainSaga),
  })
  const items: unknown[] = []
  for await (const item of app.mediator.stream(new PlainCommand({ tripId: 'p' }))) items.push(item)
  t.match(items, [{ step: 'ReserveHotel', status: 'done' }])
})

t.test('a storage that refuses a save (another run saved first): the run stops with a conflict and acts no further', async (t) => {
  const { app, travel, storage } = await rig(t)
  let saves = 0
  const save = storage.save.bind(storage)
  storage.save = async (execution, entry) => {
    // The third save (after ReserveHotel's done) finds another run's version.
    if (++saves === 3) return await save({ ...execution, version: execution.version + 5 }, entry)
    return await save(execution, entry)
  }
  const { payloads } = await book(app, {})
  t.match(payloads.at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_SAGA_CONFLICT' } })
  t.same(travel.calls, ['act ReserveHotel'], 'no step acts after the refused save')
})

t.test('without a sagaStorage registration the process\'s in-memory storage keeps it; a context its schema refuses is a coded error', async (t) => {
  const travel = new Travel()
  class BadStartSaga extends Saga(TripContext)<BookTripCommand> {
    readonly steps = [ReserveHotel]
    begin (): Trip { return { tripId: 't', failAt: 0, compensationFailures: 0, waitAt: 0, booked: 'no' as unknown as string[] } }
  }
  class BadCommand extends Request(Type.Object({ tripId: Type.String() })) {}
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, {
    container: createContainer({ strict: true }).register({ travel: asValue(travel) }),
    requests: (map) => map.bind(BookTripCommand, BookTripSaga).bind(BadCommand, BadStartSaga as never),
    heartbeatMs: 0,
  })
  app.streamRoute({ method: 'POST', url: '/trips', request: BookTripCommand })
  app.streamRoute({ method: 'POST', url: '/bad', request: BadCommand })
  const ok = await app.inject({ method: 'POST', url: '/trips', payload: { tripId: 't3' } })
  t.same(parseSse(ok.body).frames.map(payload).at(-1), { type: 'complete' })
  const bad = await app.inject({ method: 'POST', url: '/bad', payload: { tripId: 't3' } })
  t.match(parseSse(bad.body).frames.map(payload).at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_INVALID_SAGA_CONTEXT', message: /does not match its schema: \/booked/ } })
  t.same(travel.calls, ['act ReserveHotel', 'act ReserveFlight', 'act ChargeCard'], 'the bad saga acted nothing')
})

t.test('a saga run outside the mediator (handle() called by hand) says how to bind it', async (t) => {
  const saga = new BookTripSaga()
  const run = saga.handle(new BookTripCommand({ tripId: 't', failAt: 0, compensationFailures: 0, waitAt: 0 }), { signal: new AbortController().signal, streamId: 's' })
  await t.rejects(run.next(), { code: 'FST_ERR_CQRS_STREAM_INVALID_BINDING', message: /runs only through the mediator/ })
  const storage: SagaStorage = new InMemorySagaStorage()
  await storage.create({ id: 'x', saga: 'S', status: 'running', context: {}, completed: 0, results: [], compensated: 0, version: 0 })
  await t.rejects(storage.create({ id: 'x', saga: 'S', status: 'running', context: {}, completed: 0, results: [], compensated: 0, version: 0 }), { code: 'FST_ERR_CQRS_STREAM_SAGA_CONFLICT' })
  t.same(await storage.log('x'), [])
  t.same(await storage.log('unknown'), [])
  t.equal(await storage.load('unknown'), undefined)
})
