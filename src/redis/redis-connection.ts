import { once } from 'node:events'
import type { ChainableCommander, Cluster, Redis } from 'ioredis'
import { StreamStoreUnavailableError } from '../errors.js'

/** A standalone Redis, or a Redis Cluster. */
export type RedisClient = Redis | Cluster

/** Narrows a client to a Cluster. */
export function isCluster (redis: RedisClient): redis is Cluster {
  return redis.isCluster
}

// Client states in which a command is sent now, or once the first connection is made.
const USABLE = new Set(['ready', 'wait', 'connecting', 'connect'])

/**
 * The client, when it is connected or still making its first connection
 * (ioredis queues the command until then); once a connection was lost, a
 * call fails fast instead of waiting for the reconnect.
 */
export function usable (redis: RedisClient): RedisClient {
  if (!USABLE.has(redis.status)) throw new StreamStoreUnavailableError(`the Redis connection is ${redis.status}`)
  return redis
}

/**
 * Drops a connection now (no QUIT: Redis may be down); resolves once its
 * socket is closed. One without a socket (reconnecting, never connected)
 * ends at once.
 */
export async function disconnected (redis: RedisClient): Promise<void> {
  const open = redis.status === 'connecting' || redis.status === 'connect' || redis.status === 'ready'
  const ended = open ? once(redis, 'end') : undefined
  redis.disconnect()
  await ended
}

/** Runs a MULTI and rejects with the first failed command's error (EXEC itself resolves with them). */
export async function execOrThrow (multi: ChainableCommander): Promise<unknown[]> {
  const results = (await multi.exec())!
  const failed = results.find(([error]) => error !== null)
  if (failed !== undefined) throw failed[0]
  return results.map(([, result]) => result)
}
