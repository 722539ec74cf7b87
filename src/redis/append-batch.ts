import calculateSlot from 'cluster-key-slot'
import type { StoredFrame } from '../resume/stream-store.js'
import { isCluster, type RedisClient } from './redis-connection.js'
import { entryId } from './stream-entries.js'

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

/**
 * Frames are not sent one round trip each: the appends of one turn of the
 * event loop (a stream's frames come in bursts, while its client reads) go
 * as one pipeline when the turn ends, in order, one command per stream
 * (on Redis Cluster, one pipeline per node: a pipeline cannot span nodes).
 * Every other command of the store sends the batch first ({@link flush}),
 * so it is ordered after the appends made before it.
 */
export class AppendBatch {
  readonly #redis: RedisClient
  readonly #idleTtlMs: number
  // By stream key; undefined while nothing waits.
  #pending: Map<string, PendingAppends> | undefined

  constructor (redis: RedisClient, idleTtlMs: number) {
    this.#redis = redis
    this.#idleTtlMs = idleTtlMs
  }

  /** Adds `frame` to stream `key`'s frames of this turn; `refresh` pushes its keys' TTL back too. */
  add (key: string, maxFrames: number, frame: StoredFrame, refresh: boolean): Promise<void> {
    let batch = this.#pending
    if (batch === undefined) {
      batch = this.#pending = new Map()
      setImmediate(this.#flushLater)
    }
    let pending = batch.get(key)
    if (pending === undefined) {
      let resolve!: () => void
      let reject!: (error: unknown) => void
      const done = new Promise<void>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
      pending = { key, maxFrames, data: '', refresh, done, resolve, reject }
      batch.set(key, pending)
    }
    pending.data += `${entryId(frame.seq)}:${Buffer.byteLength(frame.text)}:${frame.text}`
    pending.refresh ||= refresh
    return pending.done
  }

  readonly #flushLater = (): void => { this.flush() }

  /** Sends the appends waiting for the end of this turn, now: one command per stream (and its TTLs when due). */
  flush (): void {
    const batch = this.#pending
    if (batch === undefined) return
    this.#pending = undefined
    const redis = this.#redis
    if (!isCluster(redis)) {
      this.#send([...batch.values()])
      return
    }
    // By the nodes that serve each stream's slot, as ioredis groups a cluster pipeline.
    const byNodes = new Map<string, PendingAppends[]>()
    for (const pending of batch.values()) {
      const nodes = String(redis.slots[calculateSlot(pending.key)])
      const group = byNodes.get(nodes)
      if (group === undefined) byNodes.set(nodes, [pending])
      else group.push(pending)
    }
    for (const group of byNodes.values()) this.#send(group)
  }

  #send (group: readonly PendingAppends[]): void {
    const idleTtlMs = this.#idleTtlMs
    const pipeline = this.#redis.pipeline()
    // Where each stream's commands end in the pipeline's results.
    const ends: number[] = []
    let count = 0
    for (const { key, maxFrames, data, refresh } of group) {
      pipeline.eval(APPEND_FRAMES, 1, key, maxFrames, data)
      count++
      if (refresh) {
        pipeline.pexpire(key, idleTtlMs).pexpire(`${key}:scope`, idleTtlMs).pexpire(`${key}:owner`, idleTtlMs).pexpire(`${key}:trace`, idleTtlMs)
        count += 4
      }
      ends.push(count)
    }
    pipeline.exec().then((results) => {
      let start = 0
      let index = 0
      for (const pending of group) {
        const failed = results!.slice(start, ends[index]).find(([error]) => error !== null)
        start = ends[index++]!
        if (failed === undefined) pending.resolve()
        else pending.reject(failed[0])
      }
    /* c8 ignore next 3 -- ioredis reports a lost connection per command (above); a rejected exec must still settle every append */
    }, (error: unknown) => {
      for (const pending of group) pending.reject(error)
    })
  }
}
