import type { Redis, RedisOptions } from 'ioredis'
import { InvalidOptionError } from '../errors.js'

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
   * `close()` closes) its own client.
   */
  redis: Redis | string | RedisOptions
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
   * How long one `XREAD BLOCK` of a follower waits before it checks that
   * the stream still exists.
   * @default 2000
   */
  blockMs?: number
  /** Told of failures no caller sees: the signal subscription, a lost connection. */
  logger?: RedisStoreLogger
}

export interface ResolvedRedisStoreOptions {
  readonly keyPrefix: string
  readonly idleTtlMs: number
  readonly blockMs: number
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
  return {
    keyPrefix,
    idleTtlMs: positiveInteger('idleTtlMs', options.idleTtlMs, 600_000),
    blockMs: positiveInteger('blockMs', options.blockMs, 2000),
    logger,
  }
}
