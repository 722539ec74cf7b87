import type { StoredCommand, TakenCommand } from '../resume/stream-store.js'
import { execOrThrow, type RedisClient } from './redis-connection.js'

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

/** Keeps a two-step command under the stream's key `key` for `ttlMs`, for its GET on any instance. */
export async function putCommand (redis: RedisClient, key: string, command: StoredCommand, ttlMs: number): Promise<void> {
  await execOrThrow(redis.multi()
    .hset(`${key}:command`, 'scope', command.scope, 'data', command.data)
    .pexpire(`${key}:command`, ttlMs))
}

/** Takes the command kept under `key` when its scope is one of `scopes`: once, whichever instance asks first. */
export async function takeCommand (redis: RedisClient, key: string, scopes: readonly string[], ttlMs: number): Promise<TakenCommand> {
  const found = await redis.eval(TAKE_COMMAND, 2, `${key}:command`, `${key}:scope`, ttlMs, ...scopes) as [number, string, string?] | null
  if (found === null) return undefined
  const [taken, scope, data] = found
  return taken === 1 ? { taken: true, command: { scope, data: data! } } : { taken: false, scope }
}
