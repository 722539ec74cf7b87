/** One encoded SSE frame of a stream, as sent: `seq` is the number after the `:` in its id. */
export interface StoredFrame {
  readonly seq: number
  readonly text: string
}

/** What a store knows of one stream. */
export interface StoredStream {
  /** The scope the stream was opened under; a reconnect from another route is refused. */
  readonly scope: string
  /** The kept frames with a `seq` above the one asked for, oldest first. */
  readonly frames: readonly StoredFrame[]
  /** True once the stream's last frame is in the store. */
  readonly ended: boolean
}

/** Set once per stream, when it opens. */
export interface StreamLogOptions {
  /** See {@link StoredStream.scope}. */
  readonly scope: string
  /** Keep at most this many frames, dropping the oldest. */
  readonly maxFrames: number
}

/**
 * Where resumable streams keep their recent frames, so a client that
 * reconnects with `Last-Event-ID` gets exactly the frames it missed. The
 * default keeps them in this process; a shared store (Redis) lets a client
 * resume on another instance. Methods may return promises; a rejected
 * `append` or `end` is logged and the stream goes on without resume.
 * @example
 * await app.register(fastifyCqrsStream, { requests, streamStore: new InMemoryStreamStore() })
 */
export interface StreamStore {
  /** Starts a stream's log. */
  open (streamId: string, options: StreamLogOptions): void | Promise<void>
  /** Adds a frame; `seq` grows by one per call. */
  append (streamId: string, frame: StoredFrame): void | Promise<void>
  /** The stream and its kept frames after `afterSeq`; undefined when unknown or expired. */
  read (streamId: string, afterSeq: number): StoredStream | undefined | Promise<StoredStream | undefined>
  /** The last frame is in: keep the log `keepMs` longer for late reconnects, then forget it. */
  end (streamId: string, keepMs: number): void | Promise<void>
  /** Forget the stream now: it was aborted and cannot be resumed. */
  delete (streamId: string): void | Promise<void>
}
