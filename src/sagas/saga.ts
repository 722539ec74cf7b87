import type { Static, TObject } from '@sinclair/typebox'
import { InvalidBindingError, InvalidSagaContextError } from '../errors.js'
import { useHandlerScope, type HandlerScope } from '../handlers/handler-scope.js'
import type { StreamContext } from '../handlers/stream-context.js'
import { StreamingRequestHandler } from '../handlers/streaming-request-handler.js'
import type { RequestMessage, ResultOf } from '../messages/request.js'
import { describeErrors, validatorFor } from '../messages/validator.js'
import { defaultCompensation, type CompensationPolicy } from './compensation-policy.js'
import { InMemorySagaStorage } from './in-memory-saga-storage.js'
import type { SagaExecution, SagaStorage } from './saga-execution.js'
import { runSaga } from './saga-runner.js'
import type { SagaStep, SagaStepClass } from './saga-step.js'

// Where sagas go when the container registers no `sagaStorage`.
const processStorage = new InMemorySagaStorage()

/**
 * The streaming handler of a saga: its steps act one after another, each a
 * `progress` frame (`{ step, status: 'done', result }`); when one fails, or
 * the stream is cancelled, the completed steps are compensated, last first
 * (`compensating`, `compensated` frames), and the stream ends with
 * `FST_ERR_CQRS_STREAM_SAGA_COMPENSATED` (or the cancel). Its state is saved
 * to the `sagaStorage` of the stream's scope (default: in memory) before
 * and after each step. Made by {@link Saga}.
 */
export abstract class SagaHandler<TRequest extends RequestMessage, TContext extends object> extends StreamingRequestHandler<TRequest> {
  /** The steps, in the order they act. */
  abstract readonly steps: ReadonlyArray<SagaStepClass<TContext>>
  /** The shared context a run starts with, from its command; checked against the saga's schema. */
  abstract begin (request: TRequest): TContext
  /** How failing compensations are retried. */
  readonly compensation: CompensationPolicy = defaultCompensation
  #scope: HandlerScope | undefined

  /** @internal the stream's scope, given by the mediator once built. */
  [useHandlerScope] (scope: HandlerScope): void {
    this.#scope = scope
  }

  async * handle (request: TRequest, context: StreamContext): AsyncGenerator<ResultOf<TRequest>> {
    const scope = this.#scope
    if (scope === undefined) throw new InvalidBindingError(`saga ${this.constructor.name} runs only through the mediator (bind its command to it)`)
    const sagaContext = this.begin(request)
    checkContext(this, sagaContext)
    const storage = scope.resolveIfRegistered<SagaStorage>('sagaStorage') ?? processStorage
    const execution: SagaExecution = {
      id: context.streamId,
      saga: this.constructor.name,
      status: 'running',
      context: sagaContext as Record<string, unknown>,
      completed: 0,
      results: [],
      compensated: 0,
      version: 0,
    }
    await storage.create(execution, { step: execution.saga, status: 'acting', attempt: 1, at: new Date() })
    yield * this.run(execution, storage, scope, context.signal) as AsyncGenerator<ResultOf<TRequest>>
  }

  /** @internal a run from `execution` on, for a new saga or a recovered one. */
  run (execution: SagaExecution, storage: SagaStorage, scope: Pick<HandlerScope, 'instantiate'>, signal: AbortSignal): ReturnType<typeof runSaga> {
    const steps = this.steps.map((Step) => scope.instantiate(Step) as SagaStep<object, unknown>)
    return runSaga(execution, {
      storage, steps, names: this.steps.map((Step) => Step.name), policy: this.compensation, signal, emit: (event) => { this.emit(event) },
    })
  }
}

function checkContext (saga: object, context: unknown): void {
  const schema = (saga.constructor as { contextSchema?: TObject }).contextSchema
  if (schema === undefined) return
  const validate = validatorFor(schema)
  if (!validate(context)) throw new InvalidSagaContextError(saga.constructor.name, describeErrors(validate))
}

/** A saga base class made by {@link Saga}: give it the command type, its steps and `begin()`. */
export type SagaClass<S extends TObject> = (abstract new <TRequest extends RequestMessage = RequestMessage>() => SagaHandler<TRequest, Static<S>>) & {
  /** The schema of the saga's context. */
  readonly contextSchema: S
}

/**
 * A saga over a TypeBox-typed shared context: a streaming handler whose
 * `steps` act in order and are compensated in reverse when one fails or the
 * stream is cancelled. Bind its command to it like any streaming handler;
 * `resume: true` on its route keeps a dropped connection from cancelling it.
 * @example
 * const TripContext = Type.Object({ tripId: Type.String(), hotel: Type.String(), flight: Type.String() })
 * class BookTripSaga extends Saga(TripContext)<BookTripCommand> {
 *   readonly steps = [ReserveHotel, ReserveFlight, ChargeCard]
 *   begin (command: BookTripCommand) { return { tripId: command.tripId, hotel: command.hotel, flight: command.flight } }
 * }
 * requests: (map) => map.bind(BookTripCommand, BookTripSaga)
 */
export function Saga<S extends TObject> (contextSchema: S): SagaClass<S> {
  abstract class SagaOf<TRequest extends RequestMessage> extends SagaHandler<TRequest, Static<S>> {
    static readonly contextSchema = contextSchema
  }
  return SagaOf as unknown as SagaClass<S>
}
