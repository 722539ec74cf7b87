import type { StoredFrame, StoredStream, StreamLogOptions, StreamStore } from './stream-store.js'

interface Log {
  readonly scope: string
  readonly maxFrames: number
  readonly maxBytes: number
  // A queue: frames[head…] are the kept frames, oldest first. A dropped
  // frame's slot is emptied at once (its text is freed); the empty slots
  // before `head` are cut off now and then, not on every drop.
  frames: Array<StoredFrame | undefined>
  head: number
  bytes: number
  ended: boolean
  expiry: NodeJS.Timeout | undefined
}

/**
 * The default {@link StreamStore}: each stream's last `maxFrames` frames
 * (and at most `maxBytes` characters of them) in this process's memory.
 * Resume works only on the instance that runs the stream.
 * @example
 * new InMemoryStreamStore()
 */
export class InMemoryStreamStore implements StreamStore {
  readonly #logs = new Map<string, Log>()

  /** How many streams are kept (running, or ended and within their window). */
  get size (): number { return this.#logs.size }

  open (streamId: string, options: StreamLogOptions): void {
    this.delete(streamId)
    this.#logs.set(streamId, {
      scope: options.scope,
      maxFrames: options.maxFrames,
      maxBytes: options.maxBytes ?? Infinity,
      frames: [],
      head: 0,
      bytes: 0,
      ended: false,
      expiry: undefined,
    })
  }

  append (streamId: string, frame: StoredFrame): void {
    const log = this.#logs.get(streamId)
    if (log === undefined) return
    log.frames.push(frame)
    log.bytes += frame.text.length
    while (log.frames.length - log.head > log.maxFrames || (log.bytes > log.maxBytes && log.frames.length - log.head > 1)) {
      log.bytes -= log.frames[log.head]!.text.length
      log.frames[log.head] = undefined
      log.head++
    }
    if (log.head >= 64 && log.head * 2 >= log.frames.length) {
      log.frames = log.frames.slice(log.head)
      log.head = 0
    }
  }

  read (streamId: string, afterSeq: number): StoredStream | undefined {
    const log = this.#logs.get(streamId)
    if (log === undefined) return undefined
    const after: StoredFrame[] = []
    for (let i = log.head; i < log.frames.length; i++) {
      const frame = log.frames[i]!
      if (frame.seq > afterSeq) after.push(frame)
    }
    return { scope: log.scope, frames: after, ended: log.ended }
  }

  end (streamId: string, keepMs: number): void {
    const log = this.#logs.get(streamId)
    if (log === undefined) return
    log.ended = true
    log.expiry = setTimeout(() => { this.#logs.delete(streamId) }, keepMs)
    log.expiry.unref()
  }

  delete (streamId: string): void {
    clearTimeout(this.#logs.get(streamId)?.expiry)
    this.#logs.delete(streamId)
  }
}
