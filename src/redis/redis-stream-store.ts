import { Redis, type Cluster } from 'ioredis'
import type {
  FollowOptions, SharedStreamStore, StoredCommand, StoredFrame, StoredStream, StreamLogOptions, StreamSignal, TakenCommand,
} from '../resume/stream-store.js'
import { AppendBatch } from './append-batch.js'
import { OwnerHeartbeat } from './owner-heartbeat.js'
import { disconnected, execOrThrow, isCluster, usable, type RedisClient } from './redis-connection.js'
import { resolveRedisStoreOptions, type RedisStreamStoreOptions, type ResolvedRedisStoreOptions } from './redis-store-options.js'
import { SharedReader, type Entry } from './shared-reader.js'
import { SlotReaders } from './slot-readers.js'
import { decode, END_ID, entryId } from './stream-entries.js'
import { parseSignal } from './stream-signal.js'
import { putCommand, takeCommand } from './two-step-commands.js'

// An aborted stream is kept this long for its followers to see the marker.
const ABORTED_TTL_MS = 10_000

interface OwnedLog {
  readonly key: string
  readonly maxFrames: number
  // When the keys' TTL was last pushed back (ms since epoch); 0 = never.
  refreshedAt: number
}

function isClient (redis: RedisStreamStoreOptions['redis']): redis is RedisClient {
  return typeof (redis as Partial<Redis>).duplicate === 'function'
}

/**
 * A {@link SharedStreamStore} on Redis (ioredis): each resumable stream's
 * frames in a Redis Stream, trimmed to `maxBufferedFrames` (`XADD MAXLEN`)
 * and expiring `windowMs` after the end. A client may reconnect to any
 * instance: that instance replays the kept frames and follows new ones
 * with `XREAD BLOCK` while the owning instance runs the handler. Signals
 * between instances (a follower's progress, a cancel) go over pub/sub.
 * Works on a standalone Redis and on Redis Cluster (pass a `Cluster`):
 * every key of a stream has its id as hash tag.
 *
 * While Redis is unreachable every call rejects at once with
 * `FST_ERR_CQRS_STREAM_STORE_UNAVAILABLE`: streams go on without resume,
 * with a warning in the log.
 * @example
 * import { RedisStreamStore } from 'fastify-cqrs-stream/redis'
 * const streamStore = new RedisStreamStore({ redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' })
 * await app.register(fastifyCqrsStream, { requests, streamStore })
 * app.addHook('onClose', () => streamStore.close())
 */
export class RedisStreamStore implements SharedStreamStore {
  readonly #redis: RedisClient
  readonly #ownsClient: boolean
  readonly #options: ResolvedRedisStoreOptions
  readonly #channel: string
  readonly #logs = new Map<string, OwnedLog>()
  readonly #listeners = new Set<(message: StreamSignal) => void>()
  readonly #reader: SharedReader | SlotReaders
  readonly #batch: AppendBatch
  readonly #heartbeat: OwnerHeartbeat
  #subscriber: RedisClient | undefined
  #subscribed: Promise<void> | undefined

  constructor (options: RedisStreamStoreOptions) {
    this.#options = resolveRedisStoreOptions(options)
    const { redis } = options
    this.#ownsClient = !isClient(redis)
    // An own client fails a command after one retry instead of twenty: a
    // reconnecting client should not hold a resume for long.
    this.#redis = isClient(redis)
      ? redis
      : typeof redis === 'string'
        ? new Redis(redis, { maxRetriesPerRequest: 1 })
        : new Redis({ maxRetriesPerRequest: 1, ...redis })
    if (this.#ownsClient) this.#redis.on('error', this.#onConnectionError)
    this.#channel = `${this.#options.keyPrefix}signals`
    const client = this.#redis
    const { blockMs } = this.#options
    this.#reader = isCluster(client)
      ? new SlotReaders(client, blockMs, this.#onConnectionError)
      : new SharedReader({ connect: () => client.duplicate(), unblock: (id) => client.client('UNBLOCK', id) }, blockMs, this.#onConnectionError)
    this.#batch = new AppendBatch(this.#redis, this.#options.idleTtlMs)
    this.#heartbeat = new OwnerHeartbeat(this.#redis, this.#options.keyPrefix, this.#options.heartbeatTtlMs)
  }

  /** The underlying client (a `Cluster` when given one), for health checks. */
  get redis (): Redis | Cluster { return this.#redis }

  #key (streamId: string): string {
    // The braces make both keys of a stream one hash slot (Redis Cluster).
    return `${this.#options.keyPrefix}{${streamId}}`
  }

  #ready (): RedisClient { return usable(this.#redis) }

  async open (streamId: string, options: StreamLogOptions): Promise<void> {
    const key = this.#key(streamId)
    this.#logs.set(streamId, { key, maxFrames: options.maxFrames, refreshedAt: 0 })
    this.#batch.flush()
    const { idleTtlMs } = this.#options
    const multi = this.#ready().multi()
      .del(key)
      .set(`${key}:scope`, options.scope, 'PX', idleTtlMs)
      .set(`${key}:owner`, this.#heartbeat.instanceId, 'PX', idleTtlMs)
    if (options.traceContext !== undefined) multi.set(`${key}:trace`, JSON.stringify(options.traceContext), 'PX', idleTtlMs)
    // From this instance's first stream on: followers elsewhere of its streams go on while it beats.
    const beat = this.#heartbeat.start()
    await Promise.all([beat, execOrThrow(multi)])
  }

  /** Batched: see {@link AppendBatch}. */
  append (streamId: string, frame: StoredFrame): Promise<void> {
    const log = this.#logs.get(streamId)
    if (log === undefined) return Promise.resolve()
    try {
      this.#ready()
    } catch (error) {
      return Promise.reject(error)
    }
    const now = Date.now()
    const refresh = now - log.refreshedAt >= this.#options.idleTtlMs / 2
    if (refresh) log.refreshedAt = now
    return this.#batch.add(log.key, log.maxFrames, frame, refresh)
  }

  async read (streamId: string, afterSeq: number): Promise<StoredStream | undefined> {
    const key = this.#key(streamId)
    this.#batch.flush()
    const [scope, entries, trace] = await execOrThrow(this.#ready().multi()
      .get(`${key}:scope`)
      .xrange(key, `(${entryId(afterSeq)}`, '+')
      .get(`${key}:trace`)) as [string | null, Entry[], string | null]
    // delete() removes the scope with the same MULTI that marks the stream aborted.
    if (scope === null) return undefined
    const { frames, marker } = decode(entries)
    const stored = { scope, frames, ended: marker === 'end' }
    return trace === null ? stored : { ...stored, traceContext: JSON.parse(trace) as Record<string, string> }
  }

  async end (streamId: string, keepMs: number): Promise<void> {
    this.#logs.delete(streamId)
    const key = this.#key(streamId)
    this.#batch.flush()
    await execOrThrow(this.#ready().multi()
      .xadd(key, END_ID, 'end', '1')
      .pexpire(key, keepMs)
      .pexpire(`${key}:scope`, keepMs)
      .pexpire(`${key}:owner`, keepMs)
      .pexpire(`${key}:trace`, keepMs))
  }

  async delete (streamId: string): Promise<void> {
    this.#logs.delete(streamId)
    const key = this.#key(streamId)
    this.#batch.flush()
    // The marker wakes followers, which then drop their clients.
    await execOrThrow(this.#ready().multi()
      .xadd(key, END_ID, 'aborted', '1')
      .pexpire(key, ABORTED_TTL_MS)
      .del(`${key}:scope`, `${key}:owner`, `${key}:trace`))
  }

  /**
   * Reads through the instance's one shared reader (one `XREAD BLOCK` over
   * every followed stream), not a connection per follower.
   */
  async * follow (streamId: string, afterSeq: number, signal: AbortSignal, options?: FollowOptions): AsyncGenerator<StoredStream> {
    const key = this.#key(streamId)
    const redis = this.#ready()
    const scope = await redis.get(`${key}:scope`)
    if (scope === null || signal.aborted) return
    let last = entryId(afterSeq)
    for await (const entries of this.#reader.read(key, last, signal)) {
      if (entries === null) {
        // Nothing new for blockMs: the stream may have expired, or its owner be gone.
        if (await redis.exists(key) === 0) return
        if (options !== undefined) await this.#heartbeat.endIfOwnerLost(redis, key, last, options)
        continue
      }
      const { frames, marker } = decode(entries)
      if (marker === 'aborted') return
      yield { scope, frames, ended: marker === 'end' }
      if (marker === 'end') return
      last = entries[entries.length - 1]![0]
    }
  }

  async putCommand (streamId: string, command: StoredCommand, ttlMs: number): Promise<void> {
    this.#batch.flush()
    await putCommand(this.#ready(), this.#key(streamId), command, ttlMs)
  }

  async takeCommand (streamId: string, scopes: readonly string[], ttlMs: number): Promise<TakenCommand> {
    this.#batch.flush()
    return await takeCommand(this.#ready(), this.#key(streamId), scopes, ttlMs)
  }

  async signal (message: StreamSignal): Promise<void> {
    await this.#ready().publish(this.#channel, JSON.stringify(message))
  }

  /** Resolves once subscribed: when Redis is down, once it is back. */
  async onSignal (listener: (message: StreamSignal) => void): Promise<() => void> {
    this.#listeners.add(listener)
    const stop = (): void => {
      this.#listeners.delete(listener)
      if (this.#listeners.size > 0) return
      this.#subscriber?.disconnect()
      this.#subscriber = undefined
      this.#subscribed = undefined
    }
    if (this.#subscribed === undefined) {
      // A subscribed connection can do nothing else: one of its own. It
      // subscribes on every (re)connect, so a subscription that failed
      // while Redis was down is made when it is back.
      // (A Cluster subscribes through one node of its own choosing, and moves on a failover.)
      const client = this.#redis
      const subscriber: RedisClient = isCluster(client) ? client.duplicate() : client.duplicate({ autoResubscribe: false })
      const channel = this.#channel
      this.#subscribed = new Promise((resolve) => {
        subscriber.on('ready', () => { subscriber.subscribe(channel).then(() => { resolve() }, this.#onConnectionError) })
      })
      subscriber.on('error', this.#onConnectionError)
      subscriber.on('message', this.#onMessage)
      this.#subscriber = subscriber
    }
    await this.#subscribed
    return stop
  }

  readonly #onMessage = (_channel: string, text: string): void => {
    const message = parseSignal(text)
    if (message === undefined) {
      this.#options.logger?.warn({ message: text }, 'fastify-cqrs-stream: ignored a malformed stream signal')
      return
    }
    for (const listener of this.#listeners) listener(message)
  }

  readonly #onConnectionError = (error: unknown): void => {
    this.#options.logger?.warn({ err: error }, 'fastify-cqrs-stream: Redis connection error; resume is off while it lasts')
  }

  /**
   * Closes the store's own connections (signals, followers), and the
   * client when the store made it. Call it after the app has closed.
   */
  async close (): Promise<void> {
    this.#batch.flush()
    this.#heartbeat.stop()
    this.#listeners.clear()
    const closing: RedisClient[] = [this.#reader.close()].flat().filter((connection) => connection !== undefined)
    if (this.#subscriber !== undefined) closing.push(this.#subscriber)
    if (this.#ownsClient) closing.push(this.#redis)
    this.#subscriber = undefined
    this.#subscribed = undefined
    await Promise.all(closing.map(disconnected))
  }
}
