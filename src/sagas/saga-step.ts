import { EventCollector } from '../handlers/event-collector.js'

/** What a step's `act` and `compensate` get besides the saga's context. */
export interface SagaStepRun {
  /** The saga's id: its stream's id. Use it (with the step's name) as an idempotency key. */
  readonly sagaId: string
  /**
   * For `act`: the stream's signal (a cancel or a shutdown aborts the step,
   * and the saga compensates). For `compensate`: never aborted by the
   * stream, since a cancelled saga must still be undone.
   */
  readonly signal: AbortSignal
  /** 1 on the first try; a compensation's retries count up. */
  readonly attempt: number
}

/**
 * One step of a saga: `act` does it and may change the shared context (and
 * returns what its compensation needs); `compensate` undoes it. Built per
 * saga run from the stream's Awilix scope, so its constructor's
 * dependencies come from the container. A step may `emit()` events, handled
 * with the step's progress frame.
 *
 * A step can run more than once: when a process dies during `act`, the
 * recovering process acts again. Make `act` and `compensate` idempotent
 * (key them on `sagaId`).
 * @example
 * class ReserveHotel extends SagaStep<TripContext, { reservationId: string }> {
 *   constructor (private readonly deps: { hotels: HotelService }) { super() }
 *   async act (trip: TripContext, { sagaId, signal }: SagaStepRun) {
 *     return await this.deps.hotels.reserve(trip.hotel, { key: `${sagaId}:hotel`, signal })
 *   }
 *   async compensate (trip: TripContext, { reservationId }: { reservationId: string }) {
 *     await this.deps.hotels.cancel(reservationId)
 *   }
 * }
 */
export abstract class SagaStep<TContext extends object = Record<string, unknown>, TResult = unknown> extends EventCollector {
  abstract act (context: TContext, run: SagaStepRun): Promise<TResult>
  abstract compensate (context: TContext, result: TResult, run: SagaStepRun): Promise<void>
}

/** A class whose instances are saga steps; the stream's scope builds it. */
export type SagaStepClass<TContext extends object = Record<string, unknown>> =
  abstract new (...args: never[]) => SagaStep<TContext, unknown>
