import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { Redis, type ChainableCommander } from 'ioredis'
import { StreamStoreUnavailableError } from '../errors.js'
import type {
  FollowOptions, SharedStreamStore, StoredCommand, StoredFrame, StoredStream, StreamLogOptions, StreamSignal, TakenCommand,
} from '../resume/stream-store.js'
import { resolveRedisStoreOptions, type RedisStreamStoreOptions, type ResolvedRedisStoreOptions } from './redis-store-options.js'
import { parseSignal } from './stream-signal.js'

// Frame `seq` is stored under the entry id `0-<seq + 1>` (Redis refuses
// `0-0`, and the start frame is seq 0), so XRANGE and XREAD find the frames
// after a seq by id. The end of a stream is the entry `1-0`, greater than
// every frame's: `end` when its last frame is in, `aborted` when it was
// deleted.
const END_ID = '1-0'
// An aborted stream is kept this long for its followers to see the marker.
const ABORTED_TTL_MS = 10_000
// Frames one XREAD returns at most.
const READ_COUNT = 1000
// Client states in which a command is sent now, or once the first connection is made.
const USABLE = new Set(['ready', 'wait', 'connecting', 'connect'])

interface OwnedLog {
  readonly key: string
  readonly maxFrames: number
  // When the keys' TTL was last pushed back (ms since epoch); 0 = never.
  refreshedAt: number
}

type Entry = [id: string, fields: string[]]

// The frames of one stream waiting for the batch of this turn of the event
// loop: the arguments of their command, and the one promise they share.
interface PendingAppends {
  readonly key: string
  readonly maxFrames: number
  // The frames, encoded for APPEND_FRAMES.
  data: string
  // Push the keys' TTL back with these frames.
  refresh: boolean
  readonly done: Promise<void>
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

/** The entry id of frame `seq`; for `seq` -1, the id before every frame. */
const entryId = (seq: number): string => `0-${seq + 1}`

// The frames of one stream in a batch, in one command and one argument:
// `<entry id>:<UTF-8 bytes>:<text>` each, split and XADDed by Redis. A
// command (or two arguments) per frame cost the client more than the
// frames did.
const APPEND_FRAMES = `local data = ARGV[2]
local pos = 1
while pos <= #data do
  local idEnd = string.find(data, ':', pos, true)
  local sizeEnd = string.find(data, ':', idEnd + 1, true)
  local size = tonumber(string.sub(data, idEnd + 1, sizeEnd - 1))
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], string.sub(data, pos, idEnd - 1), 'f', string.sub(data, sizeEnd + 1, sizeEnd + size))
  pos = sizeEnd + size + 1
end
return 1`

// Takes a two-step command once, if kept under one of the scopes asked
// for (ARGV[2..]); the stream then reads as running (its scope set, for
// ARGV[1] ms, unless 0) until the claimer opens it. { 1, scope, data } when taken,
// { 0, scope } when another scope's, nil when there is none.
const TAKE_COMMAND = `local found = redis.call('HMGET', KEYS[1], 'scope', 'data')
if not found[1] then return nil end
for i = 2, #ARGV do
  if found[1] == ARGV[i] then
    redis.call('DEL', KEYS[1])
    if ARGV[1] ~= '0' then redis.call('SET', KEYS[2], found[1], 'PX', ARGV[1]) end
    return { 1, found[1], found[2] }
  end
end
return { 0, found[1] }`

// Ends a stream whose owner is gone, if nothing did before: its owner is
// still ARGV[1] (KEYS[2]) and its last entry the one the follower saw
// (ARGV[2]); then the error frame ARGV[4] with the entry id ARGV[3], the
// end marker, and the keys kept ARGV[5] ms for late reconnects.
const END_LOST = `if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 or last[1][1] ~= ARGV[2] then return 0 end
redis.call('XADD', KEYS[1], ARGV[3], 'f', ARGV[4])
redis.call('XADD', KEYS[1], '${END_ID}', 'end', '1')
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return 1`

/**
 * Drops a connection now (no QUIT: Redis may be down); resolves once its
 * socket is closed. One without a socket (reconnecting, never connected)
 * ends at once.
 */
async function disconnected (redis: Redis): Promise<void> {
  const open = redis.status === 'connecting' || redis.status === 'connect' || redis.status === 'ready'
  const ended = open ? once(redis, 'end') : undefined
  redis.disconnect()
  await ended
}

/** Runs a MULTI and rejects with the first failed command's error (EXEC itself resolves with them). */
async function execOrThrow (multi: ChainableCommander): Promise<unknown[]> {
  const results = (await multi.exec())!
  const failed = results.find(([error]) => error !== null)
  if (failed !== undefined) throw failed[0]
  return results.map(([, result]) => result)
}

function isClient (redis: RedisStreamStoreOptions['redis']): redis is Redis {
  return typeof (redis as Partial<Redis>).duplicate === 'function'
}

/** The frames of `entries` and what their end marker says. */
function decode (entries: readonly Entry[]): { frames: StoredFrame[], marker: string | undefined } {
  const frames: StoredFrame[] = []
  let marker: string | undefined
  for (const [id, fields] of entries) {
    if (id === END_ID) marker = fields[0]
    else frames.push({ seq: Number(id.slice(2)) - 1, text: fields[1]! })
  }
  return { frames, marker }
}

/**
 * A {@link SharedStreamStore} on Redis (ioredis): each resumable stream's
 * frames in a Redis Stream, trimmed to `maxBufferedFrames` (`XADD MAXLEN`)
 * and expiring `windowMs` after the end. A client may reconnect to any
 * instance: that instance replays the kept frames and follows new ones
 * with `XREAD BLOCK` while the owning instance runs the handler. Signals
 * between instances (a follower's progress, a cancel) go over pub/sub.
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
  readonly #redis: Redis
  readonly #ownsClient: boolean
  readonly #options: ResolvedRedisStoreOptions
  readonly #channel: string
  readonly #logs = new Map<string, OwnedLog>()
  readonly #listeners = new Set<(message: StreamSignal) => void>()
  readonly #readers = new Set<Redis>()
  #subscriber: Redis | undefined
  // Appends of this turn of the event loop, by stream key, sent as one pipeline when it ends.
  #batch: Map<string, PendingAppends> | undefined
  #subscribed: Promise<void> | undefined
  // This instance, as the owner of the streams it runs, and its heartbeat (from its first stream on).
  readonly #instanceId = randomUUID()
  #heartbeat: NodeJS.Timeout | undefined

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
  }

  /** The underlying client, for health checks. */
  get redis (): Redis { return this.#redis }

  #key (streamId: string): string {
    // The braces make both keys of a stream one hash slot (Redis Cluster).
    return `${this.#options.keyPrefix}{${streamId}}`
  }

  /**
   * The client, when it is connected or still making its first connection
   * (ioredis queues the command until then); once a connection was lost, a
   * call fails fast instead of waiting for the reconnect.
   */
  #ready (): Redis {
    const redis = this.#redis
    if (!USABLE.has(redis.status)) throw new StreamStoreUnavailableError(`the Redis connection is ${redis.status}`)
    return redis
  }

  async open (streamId: string, options: StreamLogOptions): Promise<void> {
    const key = this.#key(streamId)
    this.#logs.set(streamId, { key, maxFrames: options.maxFrames, refreshedAt: 0 })
    this.#flush()
    const { idleTtlMs } = this.#options
    const multi = this.#ready().multi()
      .del(key)
      .set(`${key}:scope`, options.scope, 'PX', idleTtlMs)
      .set(`${key}:owner`, this.#instanceId, 'PX', idleTtlMs)
    if (this.#heartbeat === undefined) {
      // From this instance's first stream on: followers elsewhere of its streams go on while it beats.
      const ttlMs = this.#options.ownerTimeoutMs - this.#options.blockMs
      const alive = this.#aliveKey(this.#instanceId)
      multi.set(alive, '1', 'PX', ttlMs)
      // A failed beat is the connection's failure, logged by its error handler.
      this.#heartbeat = setInterval(() => { this.#redis.set(alive, '1', 'PX', ttlMs).catch(() => {}) }, Math.max(1, Math.floor(ttlMs / 3)))
      this.#heartbeat.unref()
    }
    await execOrThrow(multi)
  }

  #aliveKey (instanceId: string): string { return `${this.#options.keyPrefix}alive:${instanceId}` }

  /**
   * Frames are not sent one round trip each: the appends of one turn of
   * the event loop (a stream's frames come in bursts, while its client
   * reads) go as one pipeline when the turn ends, in order. Every other
   * command sends the batch first, so it is ordered after the appends
   * made before it.
   */
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
    let batch = this.#batch
    if (batch === undefined) {
      batch = this.#batch = new Map()
      setImmediate(this.#flushBatch)
    }
    const key = log.key
    let pending = batch.get(key)
    if (pending === undefined) {
      let resolve!: () => void
      let reject!: (error: unknown) => void
      const done = new Promise<void>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
      pending = { key, maxFrames: log.maxFrames, data: '', refresh, done, resolve, reject }
      batch.set(key, pending)
    }
    pending.data += `${entryId(frame.seq)}:${Buffer.byteLength(frame.text)}:${frame.text}`
    pending.refresh ||= refresh
    return pending.done
  }

  readonly #flushBatch = (): void => { this.#flush() }

  /** Sends the appends waiting for the end of this turn, now: one command per stream (and its TTLs when due). */
  #flush (): void {
    const batch = this.#batch
    if (batch === undefined) return
    this.#batch = undefined
    const { idleTtlMs } = this.#options
    const pipeline = this.#redis.pipeline()
    // Where each stream's commands end in the pipeline's results.
    const ends: number[] = []
    let count = 0
    for (const { key, maxFrames, data, refresh } of batch.values()) {
      pipeline.eval(APPEND_FRAMES, 1, key, maxFrames, data)
      count++
      if (refresh) {
        pipeline.pexpire(key, idleTtlMs).pexpire(`${key}:scope`, idleTtlMs).pexpire(`${key}:owner`, idleTtlMs)
        count += 3
      }
      ends.push(count)
    }
    pipeline.exec().then((results) => {
      let start = 0
      let index = 0
      for (const pending of batch.values()) {
        const failed = results!.slice(start, ends[index]).find(([error]) => error !== null)
        start = ends[index++]!
        if (failed === undefined) pending.resolve()
        else pending.reject(failed[0])
      }
    /* c8 ignore next 3 -- ioredis reports a lost connection per command (above); a rejected exec must still settle every append */
    }, (error: unknown) => {
      for (const pending of batch.values()) pending.reject(error)
    })
  }

  async read (streamId: string, afterSeq: number): Promise<StoredStream | undefined> {
    const key = this.#key(streamId)
    this.#flush()
    const [scope, entries] = await execOrThrow(this.#ready().multi()
      .get(`${key}:scope`)
      .xrange(key, `(${entryId(afterSeq)}`, '+')) as [string | null, Entry[]]
    // delete() removes the scope with the same MULTI that marks the stream aborted.
    if (scope === null) return undefined
    const { frames, marker } = decode(entries)
    return { scope, frames, ended: marker === 'end' }
  }

  async end (streamId: string, keepMs: number): Promise<void> {
    this.#logs.delete(streamId)
    const key = this.#key(streamId)
    this.#flush()
    await execOrThrow(this.#ready().multi()
      .xadd(key, END_ID, 'end', '1')
      .pexpire(key, keepMs)
      .pexpire(`${key}:scope`, keepMs)
      .pexpire(`${key}:owner`, keepMs))
  }

  async delete (streamId: string): Promise<void> {
    this.#logs.delete(streamId)
    const key = this.#key(streamId)
    this.#flush()
    // The marker wakes followers, which then drop their clients.
    await execOrThrow(this.#ready().multi()
      .xadd(key, END_ID, 'aborted', '1')
      .pexpire(key, ABORTED_TTL_MS)
      .del(`${key}:scope`, `${key}:owner`))
  }

  /** Reads with a connection of its own: `XREAD BLOCK` holds the connection it waits on. */
  async * follow (streamId: string, afterSeq: number, signal: AbortSignal, options?: FollowOptions): AsyncGenerator<StoredStream> {
    const key = this.#key(streamId)
    const scope = await this.#ready().get(`${key}:scope`)
    if (scope === null || signal.aborted) return
    const reader = this.#redis.duplicate()
    reader.on('error', this.#onConnectionError)
    this.#readers.add(reader)
    const stop = (): void => { reader.disconnect() }
    signal.addEventListener('abort', stop, { once: true })
    try {
      let last = entryId(afterSeq)
      for (;;) {
        // One key: [[key, entries]] with RESP2 and ioredis's default reply
        // mapping; { [key]: entries } with RESP3 and `replyMapping: 'resp3'`.
        const reply = await reader.xread('COUNT', READ_COUNT, 'BLOCK', this.#options.blockMs, 'STREAMS', key, last) as Array<[string, Entry[]]> | Record<string, Entry[]> | null
        if (reply === null) {
          // Nothing new: the stream may have expired, or its owner be gone.
          if (await reader.exists(key) === 0) return
          if (options !== undefined) await this.#endIfOwnerLost(reader, key, last, options)
          continue
        }
        const entries = Array.isArray(reply) ? reply[0]![1] : reply[key]!
        const { frames, marker } = decode(entries)
        if (marker === 'aborted') return
        yield { scope, frames, ended: marker === 'end' }
        if (marker === 'end') return
        last = entries[entries.length - 1]![0]
      }
    } finally {
      signal.removeEventListener('abort', stop)
      this.#readers.delete(reader)
      reader.disconnect()
    }
  }

  async putCommand (streamId: string, command: StoredCommand, ttlMs: number): Promise<void> {
    const key = `${this.#key(streamId)}:command`
    this.#flush()
    await execOrThrow(this.#ready().multi()
      .hset(key, 'scope', command.scope, 'data', command.data)
      .pexpire(key, ttlMs))
  }

  async takeCommand (streamId: string, scopes: readonly string[], ttlMs: number): Promise<TakenCommand> {
    const key = this.#key(streamId)
    this.#flush()
    const found = await this.#ready().eval(TAKE_COMMAND, 2, `${key}:command`, `${key}:scope`, ttlMs, ...scopes) as [number, string, string?] | null
    if (found === null) return undefined
    const [taken, scope, data] = found
    return taken === 1 ? { taken: true, command: { scope, data: data! } } : { taken: false, scope }
  }

  /**
   * Ends the stream with `options.lostFrame` when its owner's heartbeat is
   * gone, unless another follower (or the owner) got there first; the next
   * XREAD then reads the frame and the end, as every follower does.
   */
  async #endIfOwnerLost (reader: Redis, key: string, last: string, options: FollowOptions): Promise<void> {
    const owner = await reader.get(`${key}:owner`)
    if (owner === null || owner === this.#instanceId || await reader.exists(this.#aliveKey(owner)) === 1) return
    const seq = Number(last.slice(2))
    await reader.eval(END_LOST, 3, key, `${key}:owner`, `${key}:scope`, owner, last, entryId(seq), options.lostFrame(seq), options.keepMs)
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
      const subscriber = this.#redis.duplicate({ autoResubscribe: false })
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
    this.#flush()
    clearInterval(this.#heartbeat)
    this.#heartbeat = undefined
    this.#listeners.clear()
    const closing = [...this.#readers]
    if (this.#subscriber !== undefined) closing.push(this.#subscriber)
    if (this.#ownsClient) closing.push(this.#redis)
    this.#subscriber = undefined
    this.#subscribed = undefined
    await Promise.all(closing.map(disconnected))
  }
}
