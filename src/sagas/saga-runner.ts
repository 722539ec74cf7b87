import { setTimeout as sleep } from 'node:timers/promises'
import { SagaCompensatedError, SagaCompensationFailedError } from '../errors.js'
import type { Event } from '../messages/event.js'
import { retryDelay, type CompensationPolicy } from './compensation-policy.js'
import type { SagaExecution, SagaLogEntry, SagaStorage } from './saga-execution.js'
import type { SagaProgress } from './saga-progress.js'
import type { SagaStep } from './saga-step.js'

/** What one run of a saga (a new one, or one recovered) works with. */
export interface SagaRunOptions {
  readonly storage: SagaStorage
  readonly steps: ReadonlyArray<SagaStep<object, unknown>>
  readonly names: readonly string[]
  readonly policy: CompensationPolicy
  /** Aborts the steps' acts: the saga then compensates. */
  readonly signal: AbortSignal
  /** Where the steps' events go (the saga handler's own emit). */
  readonly emit: (event: Event) => void
}

const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

// Never aborted: a cancelled saga must still be undone.
const compensationSignal = new AbortController().signal

/**
 * Drives a saga from its stored state to its end, saving before each act
 * (so that a recovery knows the step may have acted) and after each act and
 * each compensation, and yields a progress item per step. A failing step
 * compensates the completed ones, last first, then throws
 * `FST_ERR_CQRS_STREAM_SAGA_COMPENSATED`; an abort (cancel, shutdown, the
 * client of a non-resumable stream leaving) compensates too and rethrows
 * the abort. A consumer that stops pulling between items (the stream was
 * cancelled there) gets the compensation done before its `return()` ends.
 */
export async function * runSaga (start: SagaExecution, options: SagaRunOptions): AsyncGenerator<SagaProgress> {
  const { storage, steps, names, signal, emit } = options
  let execution = start
  const save = async (change: Partial<SagaExecution>, entry: SagaLogEntry, events?: readonly Event[]): Promise<void> => {
    const next = { ...execution, ...change, version: execution.version + 1 }
    await storage.save(next, entry, events)
    execution = next
  }
  const entry = (step: number, status: SagaLogEntry['status'], attempt = 1, error?: unknown): SagaLogEntry =>
    error === undefined ? { step: names[step]!, status, attempt, at: new Date() } : { step: names[step]!, status, attempt, error: messageOf(error), at: new Date() }
  // An entry about the saga as a whole, under its class name.
  const sagaEntry = (status: SagaLogEntry['status'], error?: string): SagaLogEntry =>
    error === undefined ? { step: execution.saga, status, attempt: 1, at: new Date() } : { step: execution.saga, status, attempt: 1, error, at: new Date() }
  // The step's events: the storage's to write with the state, or the stream's.
  const eventsOf = (step: SagaStep<object, unknown>): Event[] => {
    const kept: Event[] = []
    for (const event of step.takeEvents() ?? []) {
      if (storage.keepsEvent?.(event) === true) kept.push(event)
      else emit(event)
    }
    return kept
  }

  /** Undoes the completed steps not undone yet, last first; yields around each when `visible`. */
  async function * compensate (visible: boolean): AsyncGenerator<SagaProgress> {
    for (let i = execution.completed - execution.compensated - 1; i >= 0; i--) {
      if (visible) yield { step: names[i]!, status: 'compensating' }
      for (let attempt = 1; ; attempt++) {
        try {
          await steps[i]!.compensate(execution.context, execution.results[i], { sagaId: execution.id, signal: compensationSignal, attempt })
          break
        } catch (error) {
          if (attempt >= options.policy.attempts) {
            await save({ status: 'failed-compensation', error: messageOf(error) }, entry(i, 'compensation-failed', attempt, error))
            throw new SagaCompensationFailedError(execution.saga, names[i]!, { cause: error })
          }
          await save({}, entry(i, 'compensation-failed', attempt, error))
          await sleep(retryDelay(options.policy, attempt))
        }
      }
      await save({ compensated: execution.compensated + 1 }, entry(i, 'compensated'), eventsOf(steps[i]!))
      if (visible) yield { step: names[i]!, status: 'compensated' }
    }
    await save({ status: 'compensated' }, sagaEntry('compensated'))
  }

  // Set while suspended at a yield: a return() there (the stream was
  // cancelled between items) must still leave nothing applied.
  let atYield = false
  let ended = false
  try {
    let failure: unknown
    let failed = -1
    // A recovered saga that was compensating goes on compensating.
    const acting = execution.status === 'running'
    for (let i = acting ? execution.completed : steps.length; i < steps.length; i++) {
      await save({}, entry(i, 'acting'))
      let result: unknown
      try {
        result = await steps[i]!.act(execution.context, { sagaId: execution.id, signal, attempt: 1 })
      } catch (error) {
        failure = error
        failed = i
        break
      }
      await save({ completed: i + 1, results: [...execution.results, result] }, entry(i, 'done'), eventsOf(steps[i]!))
      atYield = true
      yield { step: names[i]!, status: 'done', result }
      atYield = false
    }
    if (acting && failed < 0) {
      ended = true
      await save({ status: 'completed' }, sagaEntry('done'))
      return
    }
    if (acting) await save({ status: 'compensating', error: messageOf(failure) }, entry(failed, 'failed', 1, failure))
    const aborted = signal.aborted
    for await (const progress of compensate(!aborted)) {
      atYield = true
      yield progress
      atYield = false
    }
    ended = true
    if (aborted) throw signal.reason
    throw new SagaCompensatedError(execution.saga, names[failed] ?? 'an earlier run', execution.completed, { cause: failure ?? execution.error })
  } finally {
    if (atYield && !ended) {
      // Returned at a yield: undo quietly. A failure is in the storage (failed-compensation).
      try {
        if (execution.status === 'running') await save({ status: 'compensating', error: 'cancelled' }, sagaEntry('failed', 'cancelled'))
        // Not visible, it yields nothing: its first next() runs it to the end.
        await compensate(false).next()
      } catch {
        // Kept in the storage; the stream has ended already.
      }
    }
  }
}
