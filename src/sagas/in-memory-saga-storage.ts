import { SagaConflictError } from '../errors.js'
import type { SagaExecution, SagaLogEntry, SagaStorage } from './saga-execution.js'

/**
 * Sagas in this process's memory: what a saga uses when the container has
 * no `sagaStorage`. Lost with the process, so nothing recovers a saga it
 * held; use the PostgreSQL storage for that.
 * @example
 * container.register({ sagaStorage: asValue(new InMemorySagaStorage()) })
 */
export class InMemorySagaStorage implements SagaStorage {
  readonly #executions = new Map<string, SagaExecution>()
  readonly #logs = new Map<string, SagaLogEntry[]>()

  async create (execution: SagaExecution, entry?: SagaLogEntry): Promise<void> {
    if (this.#executions.has(execution.id)) throw new SagaConflictError(execution.id, execution.version)
    this.#executions.set(execution.id, structuredClone(execution))
    this.#logs.set(execution.id, entry === undefined ? [] : [entry])
  }

  async save (execution: SagaExecution, entry: SagaLogEntry): Promise<void> {
    const stored = this.#executions.get(execution.id)
    if (stored?.version !== execution.version - 1) throw new SagaConflictError(execution.id, execution.version - 1)
    this.#executions.set(execution.id, structuredClone(execution))
    this.#logs.get(execution.id)!.push(entry)
  }

  async load (id: string): Promise<SagaExecution | undefined> {
    const stored = this.#executions.get(id)
    return stored === undefined ? undefined : structuredClone(stored)
  }

  async log (id: string): Promise<SagaLogEntry[]> {
    return [...(this.#logs.get(id) ?? [])]
  }
}
