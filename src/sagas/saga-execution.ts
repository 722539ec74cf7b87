import type { Event } from '../messages/event.js'

/**
 * Where a saga is: `running` while its steps act, `compensating` while the
 * completed ones are undone, then `completed`, `compensated` (a step failed
 * or the saga was cancelled, and every completed step was undone) or
 * `failed-compensation` (a compensation kept failing: an operator's case).
 */
export type SagaStatus = 'running' | 'compensating' | 'completed' | 'compensated' | 'failed-compensation'

/** The stored state of one saga run (its id is its stream's id). */
export interface SagaExecution {
  readonly id: string
  /** The saga's class name. */
  readonly saga: string
  readonly status: SagaStatus
  /** The shared context, as the last completed step left it. */
  readonly context: Record<string, unknown>
  /** How many steps have completed (acted): the next step to act is `steps[completed]`. */
  readonly completed: number
  /** Each completed step's result, for its compensation. */
  readonly results: readonly unknown[]
  /** How many of the completed steps are undone (from the last one back) while compensating. */
  readonly compensated: number
  /** Why it stopped: the failed step's or compensation's error message. */
  readonly error?: string
  /** Grows by one per save; a save that expected another version is refused. */
  readonly version: number
}

/** What happened to one step, in the order it happened. */
export interface SagaLogEntry {
  readonly step: string
  readonly status: 'acting' | 'done' | 'failed' | 'compensating' | 'compensated' | 'compensation-failed'
  /** The compensation's attempt (1 for the first), or the act's. */
  readonly attempt: number
  readonly error?: string
  readonly at: Date
}

/**
 * Where sagas keep their state and step log. `create` stores version 0;
 * `save` stores `execution` (version N) only if the stored one is N - 1,
 * with `entry` appended to the log in the same write, else it rejects with
 * `FST_ERR_CQRS_STREAM_SAGA_CONFLICT`: two runs of one saga never both go on.
 * @example
 * container.register({ sagaStorage: asValue(new InMemorySagaStorage()) })
 */
export interface SagaStorage {
  create (execution: SagaExecution, entry?: SagaLogEntry): Promise<void>
  /** `events`: the step's events that {@link keepsEvent} took, written with the state (all or nothing). */
  save (execution: SagaExecution, entry: SagaLogEntry, events?: readonly Event[]): Promise<void>
  /**
   * True for an event `save()` writes with the step's state (the PostgreSQL
   * storage: notification events, into the outbox, in the same
   * transaction). The step's other events go to the stream's event handlers.
   */
  keepsEvent? (event: Event): boolean
  load (id: string): Promise<SagaExecution | undefined>
  /** The step log, oldest first. */
  log (id: string): Promise<SagaLogEntry[]>
}
