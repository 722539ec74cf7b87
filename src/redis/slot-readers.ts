import calculateSlot from 'cluster-key-slot'
import type { Cluster, Redis } from 'ioredis'
import { StreamStoreUnavailableError } from '../errors.js'
import { disconnected } from './redis-connection.js'
import { SharedReader, type Entry } from './shared-reader.js'

/** `host:port` of a node, as `Cluster.slots` names it. */
const nodeKey = (node: Redis): string => `${String(node.options.host)}:${String(node.options.port)}`

/**
 * The followers' reads on Redis Cluster. One XREAD cannot span hash slots
 * (and a stream's keys are one slot each, by its hash tag), so the
 * followers of a slot share one {@link SharedReader}, on a connection to
 * the master that serves the slot, dropped when its last follower leaves.
 * Followers of one stream share a connection; followers of different
 * streams do not. A read that fails (the slot moved to another node, a
 * failover) ends its followers' reads, whose clients reconnect; the next
 * read asks the cluster again.
 */
export class SlotReaders {
  readonly #cluster: Cluster
  readonly #blockMs: number
  readonly #onError: (error: unknown) => void
  readonly #readers = new Map<number, SharedReader>()
  #closed = false

  constructor (cluster: Cluster, blockMs: number, onError: (error: unknown) => void) {
    this.#cluster = cluster
    this.#blockMs = blockMs
    this.#onError = onError
  }

  /** As {@link SharedReader.read}. */
  async * read (key: string, last: string, signal: AbortSignal): AsyncGenerator<Entry[] | null> {
    if (this.#closed) return
    // Synchronous up to the reading's join (yield* starts it at once): a reader is never let go between.
    yield * this.#readerOf(calculateSlot(key)).read(key, last, signal)
  }

  /** Ends every reading; the connections, for the store to drop. */
  close (): Redis[] {
    this.#closed = true
    const connections: Redis[] = []
    for (const reader of this.#readers.values()) {
      const connection = reader.close()
      if (connection !== undefined) connections.push(connection)
    }
    this.#readers.clear()
    return connections
  }

  #readerOf (slot: number): SharedReader {
    let reader = this.#readers.get(slot)
    if (reader !== undefined) return reader
    // Follow() has had a reply from the cluster: its slot map is loaded.
    const master = this.#cluster.slots[slot]?.[0]
    const node = this.#cluster.nodes('master').find((candidate) => nodeKey(candidate) === master)
    /* c8 ignore next -- a slot that no master serves: the cluster is failing over */
    if (node === undefined) throw new StreamStoreUnavailableError(`no Redis Cluster master serves hash slot ${slot} now`)
    const created = new SharedReader({
      connect: () => node.duplicate({ lazyConnect: false }),
      unblock: (clientId) => node.client('UNBLOCK', clientId),
      idle: () => {
        if (this.#readers.get(slot) === created) this.#readers.delete(slot)
        const connection = created.close()
        if (connection !== undefined) disconnected(connection).then(undefined, this.#onError)
      },
    }, this.#blockMs, this.#onError)
    reader = created
    this.#readers.set(slot, reader)
    return reader
  }
}
