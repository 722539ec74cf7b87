import type { MessageBroker } from '../brokers/message-broker.js'
import { InvalidOptionError } from '../errors.js'
import type { PostgresOutbox } from './postgres-outbox.js'

/** Where a relay reports what an operator should see. */
export interface OutboxRelayLogger {
  /** A row that ran out of attempts (now `dead`). */
  error (object: object, message: string): void
  /** A failed send that will be retried, a lost database connection. */
  warn (object: object, message: string): void
}

export interface OutboxRelayOptions {
  readonly outbox: PostgresOutbox
  /** Where rows are published, e.g. an `AmqpMessageBroker` (its confirm marks a row sent). */
  readonly broker: MessageBroker
  /** Rows claimed per transaction. Default 100. */
  readonly batchSize?: number
  /** The fallback poll when no NOTIFY arrives (ms). Default 5,000. */
  readonly pollMs?: number
  /** Sends per row before it becomes `dead`. Default 10. */
  readonly maxAttempts?: number
  /** The delay before a failed row's first retry; doubled per attempt (ms). Default 1,000. */
  readonly retryDelayMs?: number
  /** The longest delay between retries (ms). Default 300,000. */
  readonly maxRetryDelayMs?: number
  /**
   * Publish the rows of one topic in the order they were committed (id
   * order), one at a time, on one relay at a time; a row that fails holds
   * back the later rows of its topic until it is sent or dead. Default
   * false: rows are published concurrently, in no promised order.
   */
  readonly orderPerTopic?: boolean
  /**
   * Wake on the table's NOTIFY. Default true. Set false where LISTEN does
   * not work, e.g. behind PgBouncer in transaction pooling mode: the relay
   * then polls every `pollMs` only.
   */
  readonly listen?: boolean
  /** How long sent rows are kept before they are deleted (ms). Default 86,400,000 (a day). */
  readonly retentionMs?: number
  /** How often sent rows past `retentionMs` are deleted (ms). Default 60,000. */
  readonly cleanupEveryMs?: number
  readonly logger?: OutboxRelayLogger
}

export interface RelaySettings {
  readonly outbox: PostgresOutbox
  readonly broker: MessageBroker
  readonly batchSize: number
  readonly pollMs: number
  readonly maxAttempts: number
  readonly retryDelayMs: number
  readonly maxRetryDelayMs: number
  readonly orderPerTopic: boolean
  readonly listen: boolean
  readonly retentionMs: number
  readonly cleanupEveryMs: number
  readonly logger: OutboxRelayLogger | undefined
}

function whole (name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidOptionError(name, `must be an integer of at least ${min}`)
  }
  return value
}

/** The options, checked, with their defaults. */
export function resolveRelayOptions (options: OutboxRelayOptions): RelaySettings {
  if (typeof options?.outbox?.migrate !== 'function') throw new InvalidOptionError('outbox', 'must be a PostgresOutbox')
  if (typeof options.broker?.send !== 'function') throw new InvalidOptionError('broker', 'must be an object with a send(message) method')
  if (options.broker === (options.outbox as unknown)) throw new InvalidOptionError('broker', 'must be a real broker, not the outbox itself')
  const retryDelayMs = whole('retryDelayMs', options.retryDelayMs, 1000, 0)
  return {
    outbox: options.outbox,
    broker: options.broker,
    batchSize: whole('batchSize', options.batchSize, 100, 1),
    pollMs: whole('pollMs', options.pollMs, 5000, 1),
    maxAttempts: whole('maxAttempts', options.maxAttempts, 10, 1),
    retryDelayMs,
    maxRetryDelayMs: whole('maxRetryDelayMs', options.maxRetryDelayMs, Math.max(300_000, retryDelayMs), retryDelayMs),
    orderPerTopic: options.orderPerTopic === true,
    listen: options.listen !== false,
    retentionMs: whole('retentionMs', options.retentionMs, 86_400_000, 0),
    cleanupEveryMs: whole('cleanupEveryMs', options.cleanupEveryMs, 60_000, 1),
    logger: options.logger,
  }
}
