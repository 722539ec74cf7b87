import { setTimeout as sleep } from 'node:timers/promises'
import { Type } from '@sinclair/typebox'
import { Request, Saga, SagaProgressSchema, SagaStep, type SagaStepRun } from '../src/index.js'

// The "book a trip" saga of the demo (GET /trips): reserve a hotel, reserve
// a flight, charge the card, each taking `stepDelayMs`. `failAt` (1–3)
// makes that step fail, so the page shows the completed ones compensated,
// last first; cancelling mid-saga compensates too.

export const TripContext = Type.Object({ tripId: Type.String(), failAt: Type.Integer() })
export type Trip = typeof TripContext.static

export class BookTripCommand extends Request(Type.Object({
  tripId: Type.String({ minLength: 1, maxLength: 64 }),
  failAt: Type.Integer({ minimum: 0, maximum: 3, default: 0 }),
}), { result: SagaProgressSchema }) {}

/** The demo's hotels, airline and bank in one: what is booked now, by trip. */
export class TripDesk {
  readonly booked = new Map<string, Set<string>>()

  book (tripId: string, what: string): string {
    const trip = this.booked.get(tripId) ?? new Set()
    this.booked.set(tripId, trip.add(what))
    return `${what}-${tripId}`
  }

  release (tripId: string, what: string): void {
    this.booked.get(tripId)?.delete(what)
  }
}

interface StepDeps { tripDesk: TripDesk, stepDelayMs: number }

abstract class TripStep extends SagaStep<Trip, { reference: string }> {
  abstract readonly position: number
  abstract readonly what: string
  readonly #deps: StepDeps
  constructor (deps: StepDeps) {
    super()
    this.#deps = deps
  }

  async act (trip: Trip, { signal }: SagaStepRun): Promise<{ reference: string }> {
    await sleep(this.#deps.stepDelayMs, undefined, { signal })
    if (trip.failAt === this.position) throw new Error(`the ${this.what} could not be booked`)
    return { reference: this.#deps.tripDesk.book(trip.tripId, this.what) }
  }

  async compensate (trip: Trip): Promise<void> {
    await sleep(this.#deps.stepDelayMs / 2)
    this.#deps.tripDesk.release(trip.tripId, this.what)
  }
}

export class ReserveHotel extends TripStep {
  readonly position = 1
  readonly what = 'hotel'
}
export class ReserveFlight extends TripStep {
  readonly position = 2
  readonly what = 'flight'
}
export class ChargeCard extends TripStep {
  readonly position = 3
  readonly what = 'payment'
}

export class BookTripSaga extends Saga(TripContext)<BookTripCommand> {
  readonly steps = [ReserveHotel, ReserveFlight, ChargeCard]
  begin ({ tripId, failAt }: BookTripCommand): Trip { return { tripId, failAt } }
}
