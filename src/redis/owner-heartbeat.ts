import { randomUUID } from 'node:crypto'
import type { FollowOptions } from '../resume/stream-store.js'
import type { RedisClient } from './redis-connection.js'
import { END_ID, entryId } from './stream-entries.js'

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
 * This instance as the owner of the streams it runs: a heartbeat key
 * (`<keyPrefix>alive:<instanceId>`) that lives `ttlMs` and is renewed three
 * times per TTL from its first stream on, and the check a follower makes
 * of another owner's.
 */
export class OwnerHeartbeat {
  readonly instanceId = randomUUID()
  readonly #redis: RedisClient
  readonly #keyPrefix: string
  readonly #ttlMs: number
  #timer: NodeJS.Timeout | undefined

  constructor (redis: RedisClient, keyPrefix: string, ttlMs: number) {
    this.#redis = redis
    this.#keyPrefix = keyPrefix
    this.#ttlMs = ttlMs
  }

  /**
   * Starts beating, once: the first beat's reply (sent before the first
   * stream names this instance as its owner), or undefined when beating.
   * Not in that stream's MULTI: on Redis Cluster the key has a slot of its own.
   */
  start (): Promise<unknown> | undefined {
    if (this.#timer !== undefined) return undefined
    const alive = this.#aliveKey(this.instanceId)
    const ttlMs = this.#ttlMs
    const first = this.#redis.set(alive, '1', 'PX', ttlMs)
    // A failed beat is the connection's failure, logged by its error handler.
    this.#timer = setInterval(() => { this.#redis.set(alive, '1', 'PX', ttlMs).catch(() => {}) }, Math.max(1, Math.floor(ttlMs / 3)))
    this.#timer.unref()
    return first
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /**
   * Ends the stream at `key` with `options.lostFrame` when its owner's
   * heartbeat is gone, unless another follower (or the owner) got there
   * first; the next XREAD then reads the frame and the end, as every
   * follower does.
   */
  async endIfOwnerLost (redis: RedisClient, key: string, last: string, options: FollowOptions): Promise<void> {
    const owner = await redis.get(`${key}:owner`)
    if (owner === null || owner === this.instanceId || await redis.exists(this.#aliveKey(owner)) === 1) return
    const seq = Number(last.slice(2))
    await redis.eval(END_LOST, 3, key, `${key}:owner`, `${key}:scope`, owner, last, entryId(seq), options.lostFrame(seq), options.keepMs)
  }

  #aliveKey (instanceId: string): string { return `${this.#keyPrefix}alive:${instanceId}` }
}
