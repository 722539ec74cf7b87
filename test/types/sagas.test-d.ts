// Type tests of sagas: the context's type from its schema, steps typed over
// it, progress items for a typed client (see expect.ts).
import { Type } from '@sinclair/typebox'
import {
  InMemorySagaStorage, Request, Saga, SagaProgressSchema, SagaStep,
  type ResultDataOf, type SagaExecution, type SagaProgress, type SagaStatus, type SagaStepRun, type SagaStorage,
} from '../../src/index.js'
import { expectExact, expectTrue, use, type Equal } from './expect.js'

const Trip = Type.Object({ tripId: Type.String(), nights: Type.Integer() })
class BookTrip extends Request(Type.Object({ tripId: Type.String() }), { result: SagaProgressSchema }) {}

class ReserveHotel extends SagaStep<typeof Trip.static, { reservation: string }> {
  async act (trip: typeof Trip.static, { sagaId, signal, attempt }: SagaStepRun): Promise<{ reservation: string }> {
    expectExact<string>()(sagaId)
    expectExact<AbortSignal>()(signal)
    expectExact<number>()(attempt)
    return { reservation: `${trip.tripId}:${trip.nights}` }
  }

  async compensate (_trip: typeof Trip.static, result: { reservation: string }): Promise<void> { use(result.reservation) }
}

export class BookTripSaga extends Saga(Trip)<BookTrip> {
  readonly steps = [ReserveHotel]
  begin (command: BookTrip) { return { tripId: command.tripId, nights: 2 } }
}

export class WrongContext extends Saga(Trip)<BookTrip> {
  readonly steps = [ReserveHotel]
  // @ts-expect-error begin() must return the schema's type
  begin (command: BookTrip) { return { tripId: command.tripId } }
}

expectTrue<Equal<typeof BookTripSaga.contextSchema, typeof Trip>>()
// The typed client's items: what SagaProgressSchema declares.
expectTrue<Equal<ResultDataOf<typeof BookTrip>, SagaProgress>>()
expectExact<'done' | 'compensating' | 'compensated'>()(({} as SagaProgress).status)
expectExact<SagaStatus>()(({} as SagaExecution).status)
const storage: SagaStorage = new InMemorySagaStorage()
use(storage)
