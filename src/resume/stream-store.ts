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
  /** {@link StreamLogOptions.traceContext}, where the store keeps it. */
  readonly traceContext?: Readonly<Record<string, string>>
}

/** Set once per stream, when it opens. */
export interface StreamLogOptions {
  /** See {@link StoredStream.scope}. */
  readonly scope: string
  /** Keep at most this many frames, dropping the oldest. */
  readonly maxFrames: number
  /**
   * Keep at most this many characters of frames, dropping the oldest (the
   * newest frame is always kept). A store may leave it to `maxFrames`, as
   * `RedisStreamStore` does: its memory is Redis's, bounded by its MAXLEN.
   */
  readonly maxBytes?: number
  /**
   * The stream's trace context (W3C `traceparent`) while tracing is on. A
   * shared store keeps it, so that a follower on another instance links its
   * span to the owner's; a store may ignore it.
   */
  readonly traceContext?: Readonly<Record<string, string>>
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

/** How a follower ends a stream whose owner is gone. */
export interface FollowOptions {
  /** The `error` frame with `seq` that ends it, for every client. */
  readonly lostFrame: (seq: number) => string
  /** How long the ended stream is kept for late reconnects. */
  readonly keepMs: number
}

/**
 * A two-step command posted to one instance, waiting for the `GET` that
 * runs it on any instance.
 */
export interface StoredCommand {
  /** The scope it was posted under (its route's, and its owner's). */
  readonly scope: string
  /** The command's data and what the route keeps of its caller, as JSON. */
  readonly data: string
}

/**
 * What {@link SharedStreamStore.takeCommand} found: the command, now
 * taken; a command kept under another scope (`refused`, left in place); or
 * `undefined`, none (never posted, expired, or taken already).
 */
export type TakenCommand =
  | { readonly taken: true, readonly command: StoredCommand }
  | { readonly taken: false, readonly scope: string }
  | undefined

/**
 * A message between the instances that share a {@link SharedStreamStore}:
 * a client follows a stream from another instance (`follow`, repeated as a
 * lease and as its progress), that client left (`leave`), or it cancelled
 * the stream (`cancel`). The instance running the stream acts on it. A
 * two-step command was taken by its `GET` or cancelled (`taken`): the
 * instance it was posted to stops counting it.
 */
export type StreamSignal =
  | { readonly type: 'follow', readonly streamId: string, readonly follower: string, readonly seq: number }
  | { readonly type: 'leave', readonly streamId: string, readonly follower: string }
  | { readonly type: 'cancel', readonly streamId: string }
  | { readonly type: 'taken', readonly streamId: string }

/**
 * A {@link StreamStore} that several instances share (Redis): a client
 * may reconnect to any of them. The instance it reaches replays and follows
 * the stream from the store while the instance that owns the stream runs
 * the handler; signals carry the follower's progress, its leaving and
 * cancels back to the owner.
 * @example
 * import { RedisStreamStore } from 'fastify-cqrs-stream/redis'
 * await app.register(fastifyCqrsStream, { requests, streamStore: new RedisStreamStore({ redis: 'redis://127.0.0.1:6379' }) })
 */
export interface SharedStreamStore extends StreamStore {
  /**
   * The frames after `afterSeq` as they are appended, in batches. The last
   * batch has `ended: true`; the iteration also stops when the stream is
   * deleted or expires (without `ended`), or when `signal` aborts. With
   * `options`, a store that can tell the stream's owner is gone (it stopped
   * beating) ends the stream with `options.lostFrame`, once for every
   * follower, and yields it as the last batch.
   */
  follow (streamId: string, afterSeq: number, signal: AbortSignal, options?: FollowOptions): AsyncIterable<StoredStream>
  /** Sends `message` to every instance that listens with `onSignal`, this one included. */
  signal (message: StreamSignal): Promise<void>
  /**
   * Calls `listener` with every signal sent. Resolves, with a function that
   * stops it, once signals are received (which may wait for the store to be
   * reachable); the plugin waits for that before the app is ready, up to
   * `closeTimeoutMs`.
   */
  onSignal (listener: (message: StreamSignal) => void): Promise<() => void>
  /**
   * Keeps a posted two-step command for `ttlMs`, so that its `GET` can
   * take it on any instance; dropped unclaimed after that.
   */
  putCommand (streamId: string, command: StoredCommand, ttlMs: number): Promise<void>
  /**
   * Takes the command posted as `streamId`, atomically and once, when its
   * scope is one of `scopes`. With `ttlMs` above 0 (a claim, not a
   * cancel), the taken command's stream reads as running (with no frames
   * yet, kept `ttlMs`) until the claimer opens it, so a second reader
   * follows it instead of getting a 404.
   */
  takeCommand (streamId: string, scopes: readonly string[], ttlMs: number): Promise<TakenCommand>
}

/** True when `store` can serve clients that reconnect to another instance. */
export function isSharedStore (store: StreamStore): store is SharedStreamStore {
  const shared = store as Partial<SharedStreamStore>
  return typeof shared.follow === 'function' && typeof shared.signal === 'function' && typeof shared.onSignal === 'function' &&
    typeof shared.putCommand === 'function' && typeof shared.takeCommand === 'function'
}
