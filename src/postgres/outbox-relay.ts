import type { PoolClient } from 'pg'
import { tracedSend } from '../brokers/traced-send.js'
import { messageOfRow, type OutboxMessageRow } from './outbox-row.js'
import { resolveRelayOptions, type OutboxRelayOptions, type RelaySettings } from './relay-options.js'

interface ClaimedRow extends OutboxMessageRow {
  id: string
  attempts: number
}

interface FailedRow {
  readonly row: ClaimedRow
  readonly error: unknown
}

interface MarkedRow {
  id: string
  event_id: string
  topic: string
  attempts: number
  status: 'pending' | 'dead'
}

/** What a relay has done since it was made. */
export interface OutboxRelayStats {
  /** Rows published and marked sent. */
  readonly sent: number
  /** Failed sends (each will be retried, or its row is dead). */
  readonly failed: number
  /** Rows that became `dead`. */
  readonly dead: number
  /** Claim transactions that held at least one row. */
  readonly batches: number
}

const ignore = (): void => {}

const errorText = (error: unknown): string => error instanceof Error ? `${error.name}: ${error.message}` : String(error)

/**
 * Publishes the rows of a {@link PostgresOutbox} through a broker. Each
 * batch is claimed in a transaction with `FOR UPDATE SKIP LOCKED`, published,
 * and marked sent only after the broker took every message (its confirm),
 * in the same transaction: relays on several instances share the rows and,
 * in normal operation, never send one twice. A relay that dies mid-batch
 * loses its transaction and its locks: another relay (or its restart) sends
 * the batch again, with the same `messageId`s (at-least-once).
 *
 * It wakes on the table's NOTIFY (sent when a transaction that added rows
 * commits), and polls every `pollMs` in case a notification was missed. A
 * failed send is retried after `retryDelayMs`, doubled per attempt; after
 * `maxAttempts` the row becomes `dead` and is logged, never dropped.
 * @example
 * const relay = new OutboxRelay({ outbox, broker: await AmqpMessageBroker.connect({ url, exchange: 'orders' }), logger: app.log })
 * await relay.start()
 * app.addHook('onClose', () => relay.stop())
 */
export class OutboxRelay {
  readonly #settings: RelaySettings
  #running = false
  #loop: Promise<void> | undefined
  // Set by a notification (or stop) that came while no one waited.
  #woken = false
  #wake: (() => void) | undefined
  #listener: PoolClient | undefined
  #relisten: NodeJS.Timeout | undefined
  #cleanedAt = 0
  #stats = { sent: 0, failed: 0, dead: 0, batches: 0 }

  constructor (options: OutboxRelayOptions) {
    this.#settings = resolveRelayOptions(options)
  }

  get stats (): OutboxRelayStats { return { ...this.#stats } }

  /**
   * Starts listening and relaying; resolves once the LISTEN is in place (or
   * has failed: it is tried again every `pollMs`, and the poll covers the
   * meantime). Rows already waiting are sent at once.
   */
  async start (): Promise<void> {
    if (this.#running) return
    this.#running = true
    if (this.#settings.listen) await this.#listen()
    // stop() came while the LISTEN was being set up.
    if (!this.#running) {
      this.#dropListener()
      return
    }
    this.#loop = this.#run()
  }

  /** Stops after the batch in flight is sent and marked; the listening connection is closed. */
  async stop (): Promise<void> {
    if (!this.#running) return
    this.#running = false
    clearTimeout(this.#relisten)
    this.#notify()
    await this.#loop
    this.#dropListener()
  }

  #dropListener (): void {
    this.#listener?.release(true)
    this.#listener = undefined
  }

  readonly #notify = (): void => {
    this.#woken = true
    this.#wake?.()
  }

  async #listen (): Promise<void> {
    const { outbox, logger, pollMs } = this.#settings
    let client: PoolClient | undefined
    try {
      client = await outbox.pool.connect()
      client.on('notification', this.#notify)
      const listening = client
      // A broken LISTEN connection: the poll goes on; listen again, and look at once for rows it missed.
      // (Reported once; later events of the dead connection are ignored.)
      client.on('error', ignore)
      client.once('error', (error) => {
        logger?.warn({ err: error }, 'fastify-cqrs-stream: the outbox relay lost its LISTEN connection; polling until it is back')
        if (this.#listener === listening) this.#listener = undefined
        listening.release(true)
        if (this.#running) this.#relisten = setTimeout(this.#listenAgain, pollMs)
      })
      await client.query(`LISTEN ${outbox.sql.channel}`)
      this.#listener = client
    } catch (error) {
      // Connected, then LISTEN failed: the connection went down in between.
      /* c8 ignore next -- the tests cut connections before connect() or after LISTEN, not in between */
      if (client !== undefined) client.release(true)
      logger?.warn({ err: error }, 'fastify-cqrs-stream: the outbox relay cannot LISTEN; polling until it can')
      if (this.#running) this.#relisten = setTimeout(this.#listenAgain, pollMs)
    }
  }

  readonly #listenAgain = (): void => {
    this.#listen().then(this.#notify, this.#notify)
  }

  async #run (): Promise<void> {
    const { batchSize, pollMs, logger } = this.#settings
    while (this.#running) {
      let waitMs = pollMs
      try {
        const { claimed, retryInMs } = await this.#batch()
        await this.#cleanUpWhenDue()
        if (claimed === batchSize) continue
        waitMs = Math.min(pollMs, retryInMs)
      } catch (error) {
        logger?.warn({ err: error }, 'fastify-cqrs-stream: an outbox batch failed; its rows are sent again later')
      }
      await this.#sleep(waitMs)
    }
  }

  #sleep (ms: number): Promise<void> {
    if (this.#woken || !this.#running) {
      this.#woken = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      const relay = this
      function done (): void {
        clearTimeout(timer)
        relay.#wake = undefined
        relay.#woken = false
        resolve()
      }
      this.#wake = done
    })
  }

  /** Claims, publishes and marks one batch; returns how many rows it held and when the soonest retry is due. */
  async #batch (): Promise<{ claimed: number, retryInMs: number }> {
    const client = await this.#settings.outbox.pool.connect()
    // A connection lost between queries is reported as an event as well as by the next query.
    client.on('error', ignore)
    let result: { claimed: number, retryInMs: number }
    try {
      result = await this.#relay(client)
    } catch (error) {
      await client.query('ROLLBACK').catch(ignore)
      client.off('error', ignore)
      // A connection that failed is not given back to the pool.
      client.release(error as Error)
      throw error
    }
    client.off('error', ignore)
    client.release()
    return result
  }

  async #relay (client: PoolClient): Promise<{ claimed: number, retryInMs: number }> {
    const { outbox, batchSize, orderPerTopic } = this.#settings
    await client.query('BEGIN')
    const rows = orderPerTopic ? await this.#claimInOrder(client) : (await client.query<ClaimedRow>(outbox.sql.claim, [batchSize])).rows
    if (rows.length === 0) {
      await client.query('COMMIT')
      return { claimed: 0, retryInMs: Infinity }
    }
    this.#stats.batches++
    const { sent, failed } = orderPerTopic ? await this.#publishInOrder(rows) : await this.#publishAll(rows)
    if (sent.length > 0) await client.query(outbox.sql.markSent, [sent])
    const retryInMs = failed.length > 0 ? await this.#markFailed(client, failed) : Infinity
    await client.query('COMMIT')
    this.#stats.sent += sent.length
    return { claimed: rows.length, retryInMs }
  }

  async #claimInOrder (client: PoolClient): Promise<ClaimedRow[]> {
    const { outbox, batchSize } = this.#settings
    const { rows: topics } = await client.query<{ topic: string }>(outbox.sql.lockTopics)
    if (topics.length === 0) return []
    const { rows } = await client.query<ClaimedRow>(outbox.sql.claimOrdered, [batchSize, topics.map((row) => row.topic)])
    return rows
  }

  async #publishAll (rows: readonly ClaimedRow[]): Promise<{ sent: string[], failed: FailedRow[] }> {
    const { broker } = this.#settings
    const outcomes = await Promise.allSettled(rows.map((row) => tracedSend(broker, messageOfRow(row), undefined)))
    const sent: string[] = []
    const failed: FailedRow[] = []
    outcomes.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') sent.push(rows[i]!.id)
      else failed.push({ row: rows[i]!, error: outcome.reason })
    })
    return { sent, failed }
  }

  /** Topics side by side, the rows of each one after another; a topic stops at its first failure. */
  async #publishInOrder (rows: readonly ClaimedRow[]): Promise<{ sent: string[], failed: FailedRow[] }> {
    const { broker } = this.#settings
    const byTopic = new Map<string, ClaimedRow[]>()
    for (const row of rows) {
      const group = byTopic.get(row.topic)
      if (group === undefined) byTopic.set(row.topic, [row])
      else group.push(row)
    }
    const sent: string[] = []
    const failed: FailedRow[] = []
    await Promise.all([...byTopic.values()].map(async (group) => {
      for (const row of group) {
        try {
          await tracedSend(broker, messageOfRow(row), undefined)
          sent.push(row.id)
        } catch (error) {
          // The rest of the topic stays pending, untried: after this row.
          failed.push({ row, error })
          return
        }
      }
    }))
    return { sent, failed }
  }

  async #markFailed (client: PoolClient, failed: readonly FailedRow[]): Promise<number> {
    const { outbox, maxAttempts, retryDelayMs, maxRetryDelayMs, logger } = this.#settings
    const delays = failed.map(({ row }) => Math.min(maxRetryDelayMs, retryDelayMs * 2 ** row.attempts))
    const { rows } = await client.query<MarkedRow>(outbox.sql.markFailed, [
      failed.map(({ row }) => row.id),
      failed.map(({ error }) => errorText(error)),
      delays,
      maxAttempts,
    ])
    this.#stats.failed += failed.length
    const errors = new Map(failed.map(({ row, error }) => [row.id, error]))
    let retryInMs = Infinity
    for (const row of rows) {
      const err = errors.get(row.id)
      if (row.status === 'dead') {
        this.#stats.dead++
        logger?.error({ err, id: row.id, messageId: row.event_id, topic: row.topic, attempts: row.attempts },
          'fastify-cqrs-stream: an outbox row ran out of attempts and is dead; list it with outbox.dead() and send it again with outbox.retry(id)')
      } else {
        const delayMs = delays[failed.findIndex((f) => f.row.id === row.id)]!
        retryInMs = Math.min(retryInMs, delayMs)
        logger?.warn({ err, id: row.id, messageId: row.event_id, topic: row.topic, attempts: row.attempts, retryInMs: delayMs },
          'fastify-cqrs-stream: an outbox row failed to send; it is retried')
      }
    }
    return retryInMs
  }

  async #cleanUpWhenDue (): Promise<void> {
    const { outbox, retentionMs, cleanupEveryMs } = this.#settings
    const now = Date.now()
    if (now - this.#cleanedAt < cleanupEveryMs) return
    this.#cleanedAt = now
    // In slices, so that a large backlog of old rows does not hold one long lock.
    for (;;) {
      const { rowCount } = await outbox.pool.query(outbox.sql.deleteSent, [retentionMs, 1000])
      if (Number(rowCount) < 1000) return
    }
  }
}
