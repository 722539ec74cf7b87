import type { StoredFrame, StoredStream, StreamLogOptions, StreamStore } from './stream-store.js'

interface Log {
  readonly scope: string
  readonly maxFrames: number
  // A ring: `frames[(start + i) % maxFrames]` is the i-th oldest kept frame.
  readonly frames: StoredFrame[]
  start: number
  ended: boolean
  expiry: NodeJS.Timeout | undefined
}

/**
 * The default {@link StreamStore}: each stream's last `maxFrames` frames in
 * a ring in this process's memory. Resume works only on the instance that
 * runs the stream.
 * @example
 * new InMemoryStreamStore()
 */
export class InMemoryStreamStore implements StreamStore {
  readonly #logs = new Map<string, Log>()

  /** How many streams are kept (running, or ended and within their window). */
  get size (): number { return this.#logs.size }

  open (streamId: string, options: StreamLogOptions): void {
    this.delete(streamId)
    this.#logs.set(streamId, { scope: options.scope, maxFrames: options.maxFrames, frames: [], start: 0, ended: false, expiry: undefined })
  }

  append (streamId: string, frame: StoredFrame): void {
    const log = this.#logs.get(streamId)
    if (log === undefined) return
    if (log.frames.length < log.maxFrames) {
      log.frames.push(frame)
    } else {
      log.frames[log.start] = frame
      log.start = (log.start + 1) % log.maxFrames
    }
  }

  read (streamId: string, afterSeq: number): StoredStream | undefined {
    const log = this.#logs.get(streamId)
    if (log === undefined) return undefined
    const { frames, start } = log
    const after: StoredFrame[] = []
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[(start + i) % frames.length]!
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
