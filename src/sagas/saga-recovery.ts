import { asValue, type AwilixContainer } from 'awilix'
import { InvalidOptionError } from '../errors.js'
import type { HandlerScope } from '../handlers/handler-scope.js'
import type { RequestMessage } from '../messages/request.js'
import type { SagaHandler } from './saga.js'
import type { SagaExecution, SagaStorage } from './saga-execution.js'

/** A storage a recovery can take interrupted sagas from (the PostgreSQL one). */
export interface RecoverableSagaStorage extends SagaStorage {
  /** Takes up to `limit` unfinished sagas whose lease lapsed, recovered fewer than `maxRecoveries` times. */
  claim (limit: number, maxRecoveries: number): Promise<SagaExecution[]>
}

/** A saga class, as a recovery builds and runs it. */
export type RecoverableSagaClass = abstract new (...args: never[]) => Pick<SagaHandler<RequestMessage, object>, 'run'>

interface RecoveryLogger {
  info (object: object, message: string): void
  warn (object: object, message: string): void
  error (object: object, message: string): void
}

export interface SagaRecoveryOptions {
  readonly storage: RecoverableSagaStorage
  /** The saga classes it may meet, by class name (as stored). */
  readonly sagas: readonly RecoverableSagaClass[]
  /** Where the sagas' and their steps' dependencies come from (a scope per saga run). */
  readonly container: AwilixContainer
  /** How often it looks for interrupted sagas. @default 5000 */
  readonly intervalMs?: number
  /** Sagas taken per look. @default 10 */
  readonly batchSize?: number
  /** A saga recovered this many times (it kept killing its process) is left for an operator. @default 5 */
  readonly maxRecoveries?: number
  readonly logger?: RecoveryLogger
}

const nothing = (): void => {}
const silent: RecoveryLogger = { info: nothing, warn: nothing, error: nothing }

/**
 * Finishes sagas whose process died: every `intervalMs` it takes the
 * unfinished sagas whose lease lapsed (each by one recoverer, across
 * instances) and runs them on from their stored state. A saga that was
 * acting acts again from the step that was in progress (at least once:
 * steps must be idempotent); one that was compensating goes on
 * compensating. Start one per instance.
 * @example
 * const recovery = new SagaRecovery({ storage: sagas, sagas: [BookTripSaga], container, logger: app.log })
 * recovery.start()
 * app.addHook('onClose', () => recovery.stop())
 */
export class SagaRecovery {
  readonly #options: Required<SagaRecoveryOptions>
  readonly #classes: Map<string, RecoverableSagaClass>
  readonly #stop = new AbortController()
  readonly #running = new Set<Promise<void>>()
  #timer: NodeJS.Timeout | undefined
  #looking: Promise<void> | undefined

  constructor (options: SagaRecoveryOptions) {
    const settings = { intervalMs: 5000, batchSize: 10, maxRecoveries: 5, logger: silent, ...options }
    for (const name of ['intervalMs', 'batchSize', 'maxRecoveries'] as const) {
      if (!Number.isInteger(settings[name]) || settings[name] < 1) throw new InvalidOptionError(name, 'must be an integer of at least 1')
    }
    if (typeof settings.storage?.claim !== 'function') throw new InvalidOptionError('storage', 'must be a storage that recovers (PostgresSagaStorage)')
    this.#options = settings
    this.#classes = new Map(settings.sagas.map((Saga) => [Saga.name, Saga]))
  }

  /** Looks now, then every `intervalMs`. */
  start (): void {
    if (this.#timer !== undefined || this.#stop.signal.aborted) return
    this.#timer = setInterval(() => { this.recoverNow().catch(nothing) }, this.#options.intervalMs)
    this.#timer.unref()
    this.recoverNow().catch(nothing)
  }

  /** One look: takes what is due and runs it; resolves when those runs ended. */
  recoverNow (): Promise<void> {
    this.#looking ??= this.#look().finally(() => { this.#looking = undefined })
    return this.#looking
  }

  /** Stops looking and aborts the runs in progress (they compensate, or are recovered again after their lease). */
  async stop (): Promise<void> {
    clearInterval(this.#timer)
    this.#stop.abort()
    await this.#looking
    await Promise.all(this.#running)
  }

  async #look (): Promise<void> {
    const { storage, batchSize, maxRecoveries, logger } = this.#options
    let taken: SagaExecution[]
    try {
      taken = await storage.claim(batchSize, maxRecoveries)
    } catch (error) {
      logger.warn({ err: error }, 'fastify-cqrs-stream: looking for interrupted sagas failed; looking again later')
      return
    }
    await Promise.all(taken.map((execution) => {
      const run = this.#recover(execution).finally(() => { this.#running.delete(run) })
      this.#running.add(run)
      return run
    }))
  }

  async #recover (execution: SagaExecution): Promise<void> {
    const { container, storage, logger } = this.#options
    const Saga = this.#classes.get(execution.saga)
    if (Saga === undefined) {
      logger.error({ sagaId: execution.id, saga: execution.saga }, 'fastify-cqrs-stream: an interrupted saga of a class this recovery was not given; add it to `sagas`')
      return
    }
    const signal = this.#stop.signal
    const scope = container.createScope()
    scope.register({ signal: asValue(signal), streamId: asValue(execution.id) })
    const handlerScope: Pick<HandlerScope, 'instantiate'> = { instantiate: (Class) => scope.build(Class as unknown as new () => never) }
    logger.info({ sagaId: execution.id, saga: execution.saga, status: execution.status, completed: execution.completed }, 'fastify-cqrs-stream: recovering an interrupted saga')
    try {
      const saga = scope.build(Saga as unknown as new () => Pick<SagaHandler<RequestMessage, object>, 'run'>)
      for await (const progress of saga.run(execution, storage, handlerScope, signal)) {
        logger.info({ sagaId: execution.id, ...progress }, 'fastify-cqrs-stream: a recovered saga\'s step')
      }
      logger.info({ sagaId: execution.id }, 'fastify-cqrs-stream: a recovered saga completed')
    } catch (error) {
      const code = (error as { code?: unknown }).code
      if (code === 'FST_ERR_CQRS_STREAM_SAGA_COMPENSATED') logger.info({ sagaId: execution.id, err: error }, 'fastify-cqrs-stream: a recovered saga was compensated')
      else logger.error({ sagaId: execution.id, err: error }, 'fastify-cqrs-stream: a recovered saga failed')
    } finally {
      await scope.dispose()
    }
  }
}
