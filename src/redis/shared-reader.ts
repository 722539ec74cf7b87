import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Redis } from 'ioredis'

/** One entry of a Redis Stream, as ioredis returns it. */
export type Entry = [id: string, fields: string[]]

// Entries one XREAD returns at most, per stream.
const READ_COUNT = 1000
// The longest one XREAD blocks: a reading that joins between the read's
// start and its arrival at Redis is not unblocked (CLIENT UNBLOCK of a
// client not blocked yet does nothing), and waits this long at most.
export const MAX_BLOCK_MS = 250

/**
 * Where a {@link SharedReader} reads: the connection it blocks on (made
 * when the first follower joins) and how to unblock it, from another one.
 */
export interface ReaderSource {
  connect (): Redis
  unblock (clientId: number): Promise<unknown>
  /** Called when the last follower has left; the source may close the reader then. */
  idle? (): void
}

interface Reading {
  readonly key: string
  // The id of the last entry handed out.
  last: string
  // Handed out and not taken yet (null: nothing came for blockMs); while
  // set, the reading is left out of the XREAD, so a slow client holds one
  // batch, not the stream.
  batch: Entry[] | null | undefined
  failure: unknown
  idleSince: number
  wake: (() => void) | undefined
  done: boolean
}

/** -1, 0 or 1 as stream entry id `a` is before, equal to or after `b` (`<ms>-<seq>`). */
export function compareIds (a: string, b: string): number {
  const [aMs, aSeq] = a.split('-').map(Number) as [number, number]
  const [bMs, bSeq] = b.split('-').map(Number) as [number, number]
  return aMs !== bMs ? Math.sign(aMs - bMs) : Math.sign(aSeq - bSeq)
}

/**
 * Every follower of an instance reads its stream through one connection:
 * one `XREAD BLOCK` over all the followed keys, instead of one connection
 * (and one blocked read) per follower. A follower that joins, or catches
 * up after its client was slow, while the read is blocked unblocks it
 * (`CLIENT UNBLOCK`, from the command connection), so the next read
 * includes it at once. On Redis Cluster, where one XREAD cannot span hash
 * slots, there is one per followed slot ({@link SlotReaders}).
 */
export class SharedReader {
  readonly #source: ReaderSource
  readonly #blockMs: number
  readonly #readBlockMs: number
  readonly #onError: (error: unknown) => void
  readonly #readings = new Set<Reading>()
  #connection: Redis | undefined
  // The blocked connection's client id, for CLIENT UNBLOCK; undefined while not blocked.
  #blockedId: number | undefined
  #clientId: Promise<number> | undefined
  #unblocking = false
  #looping = false
  // Wakes the loop while every reading holds a batch.
  #kick: (() => void) | undefined
  #closed = false

  constructor (source: ReaderSource, blockMs: number, onError: (error: unknown) => void) {
    this.#source = source
    this.#blockMs = blockMs
    this.#readBlockMs = Math.min(blockMs, MAX_BLOCK_MS)
    this.#onError = onError
  }

  /**
   * The entries of `key` after `last`, in batches as they are appended;
   * `null` when nothing came for `blockMs`. Ends when `signal` aborts;
   * throws when the read fails.
   */
  async * read (key: string, last: string, signal: AbortSignal): AsyncGenerator<Entry[] | null> {
    // Closed: the store is closing, or (a slot's reader) it was let go.
    if (this.#closed) return
    const reading: Reading = { key, last, batch: undefined, failure: undefined, idleSince: Date.now(), wake: undefined, done: false }
    const stop = (): void => { this.#finish(reading) }
    signal.addEventListener('abort', stop, { once: true })
    this.#readings.add(reading)
    this.#rejoin()
    try {
      for (;;) {
        if (reading.batch === undefined && !reading.done) await new Promise<void>((resolve) => { reading.wake = resolve })
        if (reading.failure !== undefined) throw reading.failure
        if (reading.done) return
        const batch = reading.batch!
        reading.batch = undefined
        this.#rejoin()
        yield batch
      }
    } finally {
      signal.removeEventListener('abort', stop)
      this.#finish(reading)
    }
  }

  /** Ends every reading and drops the connection (the store is closing). */
  close (): Redis | undefined {
    this.#closed = true
    for (const reading of this.#readings) this.#finish(reading)
    const connection = this.#connection
    this.#connection = undefined
    return connection
  }

  #finish (reading: Reading): void {
    reading.done = true
    this.#readings.delete(reading)
    reading.wake?.()
  }

  /** A reading is ready for the next XREAD: start the loop, or make the blocked read come back. */
  #rejoin (): void {
    if (!this.#looping) {
      this.#looping = true
      this.#loop().then(undefined, this.#onError)
      return
    }
    this.#kick?.()
    if (this.#blockedId === undefined || this.#unblocking) return
    this.#unblocking = true
    // Once per turn, however many rejoin.
    setImmediate(() => {
      this.#unblocking = false
      const id = this.#blockedId
      if (id !== undefined) this.#source.unblock(id).then(undefined, this.#onError)
    })
  }

  #reader (): Redis {
    let connection = this.#connection
    if (connection === undefined) {
      connection = this.#connection = this.#source.connect()
      connection.on('error', this.#onError)
      const reader = connection
      // A new id on every (re)connect.
      const fetchId = (): void => {
        const id = reader.client('ID') as Promise<number>
        // Read by the loop's next XREAD; one fetched as the store closes is never read.
        id.catch(() => {})
        this.#clientId = id
      }
      fetchId()
      connection.on('ready', fetchId)
    }
    return connection
  }

  async #loop (): Promise<void> {
    try {
      while (this.#readings.size > 0 && !this.#closed) {
        const ready = [...this.#readings].filter((reading) => reading.batch === undefined)
        if (ready.length === 0) {
          await new Promise<void>((resolve) => { this.#kick = resolve })
          this.#kick = undefined
          continue
        }
        // One id per key: the earliest of its ready readings.
        const from = new Map<string, string>()
        for (const { key, last } of ready) {
          const before = from.get(key)
          if (before === undefined || compareIds(last, before) < 0) from.set(key, last)
        }
        const reader = this.#reader()
        let reply: Array<[string, Entry[]]> | Record<string, Entry[]> | null
        try {
          const clientId = await this.#clientId!
          this.#blockedId = clientId
          reply = await reader.xread('COUNT', READ_COUNT, 'BLOCK', this.#readBlockMs, 'STREAMS', ...from.keys(), ...from.values()) as typeof reply
        } catch (error) {
          if (this.#closed) return
          for (const reading of ready) {
            reading.failure = error
            this.#finish(reading)
          }
          continue
        } finally {
          this.#blockedId = undefined
        }
        this.#deliver(ready, reply)
        // The followers take their batches (a fast client within this turn) before the next read.
        await nextTurn()
      }
    } finally {
      // Synchronously after the loop's last check: a reading that joins
      // from here on starts a new loop.
      this.#looping = false
    }
    if (!this.#closed) this.#source.idle?.()
  }

  #deliver (ready: readonly Reading[], reply: Array<[string, Entry[]]> | Record<string, Entry[]> | null): void {
    // RESP2 and ioredis's default mapping: [[key, entries], …]; RESP3 with `replyMapping: 'resp3'`: { [key]: entries }.
    const byKey = new Map<string, Entry[]>(reply === null ? [] : Array.isArray(reply) ? reply : Object.entries(reply))
    const now = Date.now()
    for (const reading of ready) {
      if (reading.done) continue
      const entries = byKey.get(reading.key)?.filter(([id]) => compareIds(id, reading.last) > 0) ?? []
      if (entries.length > 0) {
        reading.batch = entries
        reading.last = entries[entries.length - 1]![0]
        reading.idleSince = now
      } else if (now - reading.idleSince >= this.#blockMs) {
        reading.batch = null
        reading.idleSince = now
      } else {
        continue
      }
      reading.wake?.()
    }
  }
}
