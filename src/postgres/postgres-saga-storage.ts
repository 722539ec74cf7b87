import { randomUUID } from 'node:crypto'
import type { Pool, PoolClient } from 'pg'
import { InvalidOptionError, SagaConflictError } from '../errors.js'
import type { Event } from '../messages/event.js'
import { NotificationEventMessage } from '../messages/notification-event.js'
import type { SagaExecution, SagaLogEntry, SagaStorage } from '../sagas/saga-execution.js'
import type { PostgresOutbox } from './postgres-outbox.js'
import { runMigration } from './run-migration.js'
import { sagaSql, type SagaSql } from './saga-sql.js'

export interface PostgresSagaStorageOptions {
  /** A node-postgres pool. */
  readonly pool: Pool
  /** With an outbox, a step's notification events are written to it in the transaction that saves the step. */
  readonly outbox?: PostgresOutbox
  /** The tables are `<tablePrefix>_executions` and `<tablePrefix>_log`. @default 'cqrs_saga' */
  readonly tablePrefix?: string
  /**
   * How long a saga stays this instance's without a save or a renewal;
   * renewed every third of it while the saga runs. A recovery takes a saga
   * whose lease lapsed (its instance died). @default 30000
   */
  readonly leaseMs?: number
  /** This instance's name in the lease. @default a random UUID */
  readonly instanceId?: string
}

interface ExecutionRow {
  id: string
  saga: string
  status: SagaExecution['status']
  context: Record<string, unknown>
  completed: number
  results: unknown[]
  compensated: number
  error: string | null
  version: number
}

interface LogRow { step: string, status: SagaLogEntry['status'], attempt: number, error: string | null, at: Date }

const executionOf = (row: ExecutionRow): SagaExecution => {
  const { error, ...rest } = row
  return error === null ? rest : { ...rest, error }
}

/* c8 ignore next -- called only when a connection is cut between queries */
const ignore = (): void => {}

const isLive = (execution: SagaExecution): boolean => execution.status === 'running' || execution.status === 'compensating'

/**
 * Sagas on PostgreSQL: executions with their status, context, version and
 * lease, and a step log. A save is one transaction: the next version (only
 * over the one before, by the lease holder), its log entry, and with an
 * `outbox` the step's notification events. A recovery (`SagaRecovery`)
 * claims sagas whose lease lapsed, `FOR UPDATE SKIP LOCKED`.
 * @example
 * const sagas = new PostgresSagaStorage({ pool, outbox })
 * await sagas.migrate()
 * container.register({ sagaStorage: asValue(sagas) })
 * app.addHook('onClose', () => sagas.close())
 */
export class PostgresSagaStorage implements SagaStorage {
  readonly pool: Pool
  readonly instanceId: string
  readonly leaseMs: number
  /** @internal the tables' statements. */
  readonly sql: SagaSql
  readonly #outbox: PostgresOutbox | undefined
  // The sagas this instance holds the lease of: renewed while they run.
  readonly #held = new Set<string>()
  #renewal: NodeJS.Timeout | undefined

  constructor (options: PostgresSagaStorageOptions) {
    if (typeof options !== 'object' || options === null || typeof options.pool?.connect !== 'function') {
      throw new InvalidOptionError('pool', 'must be a pg Pool (new pg.Pool({ connectionString }))')
    }
    const leaseMs = options.leaseMs ?? 30_000
    if (!Number.isInteger(leaseMs) || leaseMs < 100) throw new InvalidOptionError('leaseMs', 'must be an integer of at least 100')
    this.pool = options.pool
    this.#outbox = options.outbox
    this.leaseMs = leaseMs
    this.instanceId = options.instanceId ?? randomUUID()
    this.sql = sagaSql(options.tablePrefix ?? 'cqrs_saga')
  }

  /** Creates the tables if missing; idempotent, safe from several instances at once. */
  async migrate (): Promise<void> {
    await runMigration(this.pool, this.sql.migrate)
  }

  keepsEvent (event: Event): boolean {
    return this.#outbox !== undefined && event instanceof NotificationEventMessage
  }

  async create (execution: SagaExecution, entry?: SagaLogEntry): Promise<void> {
    try {
      await this.pool.query(this.sql.create, [
        ...this.#values(execution), this.instanceId, this.leaseMs,
        entry?.step ?? null, entry?.status ?? null, entry?.attempt ?? null, entry?.error ?? null, entry?.at ?? null,
      ])
    } catch (error) {
      if ((error as { code?: unknown }).code === '23505') throw new SagaConflictError(execution.id, execution.version)
      throw error
    }
    this.#hold(execution.id)
  }

  async save (execution: SagaExecution, entry: SagaLogEntry, events: readonly Event[] = []): Promise<void> {
    await this.#inTransaction(async (client) => {
      const { rowCount } = await client.query(this.sql.update, [
        execution.id, execution.status, JSON.stringify(execution.context), execution.completed, JSON.stringify(execution.results),
        execution.compensated, execution.error ?? null, execution.version, this.instanceId, this.leaseMs,
      ])
      if (rowCount === 0) throw new SagaConflictError(execution.id, execution.version - 1)
      await client.query(`INSERT INTO ${this.sql.log} (saga_id, step, status, attempt, error, at) VALUES ($1, $2, $3, $4, $5, $6)`,
        [execution.id, entry.step, entry.status, entry.attempt, entry.error ?? null, entry.at])
      if (events.length > 0) await this.#outbox!.add(client, events as NotificationEventMessage[])
    })
    if (!isLive(execution)) this.#held.delete(execution.id)
  }

  async load (id: string): Promise<SagaExecution | undefined> {
    const { rows } = await this.pool.query<ExecutionRow>(this.sql.load, [id])
    return rows[0] === undefined ? undefined : executionOf(rows[0])
  }

  async log (id: string): Promise<SagaLogEntry[]> {
    const { rows } = await this.pool.query<LogRow>(this.sql.readLog, [id])
    return rows.map(({ error, ...rest }) => error === null ? rest : { ...rest, error })
  }

  /**
   * Takes up to `limit` unfinished sagas whose lease lapsed and that were
   * recovered fewer than `maxRecoveries` times: this instance holds them
   * now. Two recoverers never take the same one.
   */
  async claim (limit: number, maxRecoveries: number): Promise<SagaExecution[]> {
    const { rows } = await this.pool.query<ExecutionRow>(this.sql.claim, [this.instanceId, this.leaseMs, limit, maxRecoveries])
    for (const row of rows) this.#hold(row.id)
    return rows.map(executionOf)
  }

  /** Stops renewing leases: the sagas still held here are recovered elsewhere once their leases lapse. */
  close (): void {
    clearInterval(this.#renewal)
    this.#renewal = undefined
    this.#held.clear()
  }

  #hold (id: string): void {
    this.#held.add(id)
    if (this.#renewal !== undefined) return
    this.#renewal = setInterval(() => { this.#renew() }, Math.floor(this.leaseMs / 3))
    this.#renewal.unref()
  }

  #renew (): void {
    if (this.#held.size === 0) return
    // A failed renewal is retried at the next tick; a lease that lapses meanwhile lets a recovery take over.
    this.pool.query(this.sql.renew, [[...this.#held], this.instanceId, this.leaseMs]).catch(() => {})
  }

  #values (execution: SagaExecution): unknown[] {
    return [
      execution.id, execution.saga, execution.status, JSON.stringify(execution.context), execution.completed,
      JSON.stringify(execution.results), execution.compensated, execution.error ?? null, execution.version,
    ]
  }

  async #inTransaction (work: (client: PoolClient) => Promise<void>): Promise<void> {
    const client = await this.pool.connect()
    // A connection cut between queries reports here, not as an uncaught error.
    client.on('error', ignore)
    let broken: unknown
    try {
      await client.query('BEGIN')
      await work(client)
      await client.query('COMMIT')
    } catch (error) {
      /* c8 ignore next -- a ROLLBACK fails only on a connection cut mid-transaction: then it is dropped, not pooled */
      await client.query('ROLLBACK').catch((rollback: unknown) => { broken = rollback })
      throw error
    } finally {
      client.off('error', ignore)
      /* c8 ignore next -- see the ROLLBACK above */
      client.release(broken instanceof Error ? broken : undefined)
    }
  }
}
