import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { InvalidOptionError } from '../errors.js'
import { MAX_BLOCK_MS } from './shared-reader.js'

/** Where the store reports what it cannot throw: a failing subscription or connection. */
export interface RedisStoreLogger {
  warn (object: object, message: string): void
}

/**
 * Options of {@link RedisStreamStore}.
 * @example
 * new RedisStreamStore({ redis: 'redis://127.0.0.1:6379', keyPrefix: 'orders-api:streams:' })
 */
export interface RedisStreamStoreOptions {
  /**
   * An ioredis client, which the store uses and duplicates but never closes;
   * or a URL or ioredis options, from which the store makes (and on
   * `close()` closes) its own client. For Redis Cluster, an ioredis
   * `Cluster` (see docs/scaling.md, "Redis Cluster").
   * @example
   * new RedisStreamStore({ redis: new Cluster([{ host: '10.0.0.1', port: 6379 }]) })
   */
  redis: Redis | Cluster | string | RedisOptions
  /**
   * Prefix of every key and of the signal channel; instances that share
   * streams must use the same one.
   * @default 'cqrs-stream:'
   */
  keyPrefix?: string
  /**
   * A running stream's keys expire this long after its last frame, so the
   * frames of an instance that died are not kept forever.
   * @default 600000
   */
  idleTtlMs?: number
  /**
   * How long a follower may see no frame before it checks that the stream
   * still exists and that its owner beats.
   * @default 2000
   */
  blockMs?: number
  /**
   * How long after its instance stopped (killed, or cut off from Redis) a
   * stream that clients follow on other instances ends there, with an
   * `FST_ERR_CQRS_STREAM_OWNER_LOST` error frame. Each instance keeps a
   * heartbeat key that lives `ownerTimeoutMs - blockMs - min(blockMs,
   * 250)`, renewed three times as often; a follower that saw no frame for
   * `blockMs` checks it (within 250 ms more). An instance whose event loop
   * stalls longer than the heartbeat's life is taken for lost too. Must be
   * more than `blockMs + min(blockMs, 250)`.
   * @default 5000, or twice `blockMs` when that is more
   */
  ownerTimeoutMs?: number
  /** Told of failures no caller sees: the signal subscription, a lost connection. */
  logger?: RedisStoreLogger
}

export interface ResolvedRedisStoreOptions {
  readonly keyPrefix: string
  readonly idleTtlMs: number
  readonly blockMs: number
  readonly ownerTimeoutMs: number
  /** How long the heartbeat key of an instance lives: the rest of ownerTimeoutMs is a follower's time to check it. */
  readonly heartbeatTtlMs: number
  readonly logger: RedisStoreLogger | undefined
}

function positiveInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new InvalidOptionError(name, `must be a positive integer (ms), got ${String(value)}`)
  }
  return value as number
}

/** Throws `FST_ERR_CQRS_STREAM_INVALID_OPTION` naming the first bad option. */
export function resolveRedisStoreOptions (options: RedisStreamStoreOptions): ResolvedRedisStoreOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('RedisStreamStore options', 'must be an object')
  const { redis, keyPrefix = 'cqrs-stream:', logger } = options
  if (typeof redis !== 'string' && (typeof redis !== 'object' || redis === null)) {
    throw new InvalidOptionError('redis', 'must be an ioredis client, a redis:// URL or ioredis options')
  }
  if (typeof keyPrefix !== 'string') throw new InvalidOptionError('keyPrefix', 'must be a string')
  if (logger !== undefined && typeof logger?.warn !== 'function') throw new InvalidOptionError('logger', 'must have a warn(object, message) method')
  const blockMs = positiveInteger('blockMs', options.blockMs, 2000)
  const ownerTimeoutMs = positiveInteger('ownerTimeoutMs', options.ownerTimeoutMs, Math.max(5000, 2 * blockMs))
  const checkMs = blockMs + Math.min(blockMs, MAX_BLOCK_MS)
  if (ownerTimeoutMs <= checkMs) throw new InvalidOptionError('ownerTimeoutMs', `must be more than blockMs + min(blockMs, 250) (${checkMs}), got ${ownerTimeoutMs}`)
  return {
    keyPrefix,
    idleTtlMs: positiveInteger('idleTtlMs', options.idleTtlMs, 600_000),
    blockMs,
    ownerTimeoutMs,
    heartbeatTtlMs: ownerTimeoutMs - checkMs,
    logger,
  }
}
