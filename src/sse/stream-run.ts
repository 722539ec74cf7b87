import type { RunOutcome } from '../diagnostics.js'
import { StreamAbortedError } from '../errors.js'
import { RemoteSink } from '../resume/remote-sink.js'
import type { StreamStore } from '../resume/stream-store.js'
import { FrameEncoder, type FrameEncoderOptions } from './frame-encoder.js'
import { RunContext } from '../run/run-context.js'
import { isExposed, isFailure, toPublicError } from './public-error.js'
import type { ConnectionOwner, SseConnection } from './sse-connection.js'
import { isTerminable, terminateSource } from '../run/terminable.js'
import { RunTelemetry } from './run-telemetry.js'

// A failed store's log is deleted again after 0.5 s, 1 s, 2 s ... up to a
// minute apart: about ten minutes in all, as long as Redis keeps an idle log.
const DROP_RETRY_FIRST_MS = 500
const DROP_RETRY_MAX_MS = 60_000
const DROP_ATTEMPTS = 15

/** Where the run reports failures it turned into `error` frames. */
export interface RunLogger {
  info (object: object, message: string): void
  error (object: object, message: string): void
  warn (object: object, message: string): void
}

/** What a source function gets: build the iterable with it. */
export interface SourceContext {
  /** Aborted when the client leaves (for good) or the stream is terminated. */
  readonly signal: AbortSignal
  /** The id in every frame's `id:` and in the start frame. */
  readonly streamId: string
}

/** An async iterable, or a function that builds one from the stream's signal and id. */
export type EventStreamSource<T> = AsyncIterable<T> | ((context: SourceContext) => AsyncIterable<T>)

/** How a resumable run keeps its frames while the client is away. */
export interface RunResume {
  readonly store: StreamStore
  readonly scope: string
  readonly windowMs: number
  readonly maxBufferedFrames: number
  /** The most characters of frames kept, and sent while the client is away. */
  readonly maxBufferedBytes: number
}

export interface StreamRunOptions<T> extends FrameEncoderOptions<T> {
  readonly logger: RunLogger
  /** Set for a resumable stream. */
  readonly resume?: RunResume | undefined
  /** Called once the run has ended, whichever way. */
  readonly onEnd?: ((run: StreamRun<T>) => void) | undefined
  /** For the `run:*` diagnostics channels: the route's url and the command's class name. */
  readonly route?: string | undefined
  readonly command?: string | undefined
}

/** Where a run's frames go: a client's connection here, or a client that follows the stream from another instance. */
type RunSink = Pick<SseConnection, 'blocked' | 'writable' | 'push' | 'end' | 'endWithin' | 'done'>

/** What `attach()` did with a reconnecting client. */
export type AttachResult = 'attached' | 'unavailable'

// A frame is a concatenation, which V8 keeps as a tree of string pieces.
// A frame kept for replay is copied into one flat string: measured with
// bench/resume.ts, 40 % less memory per kept frame.
function flatten (text: string): string {
  return Buffer.from(text).toString()
}

/**
 * One execution of a source, written as SSE frames to the connection of the
 * moment. The run pulls no item while that connection's buffer is full.
 * Without `resume`, the client leaving aborts `signal` and returns the
 * source. With `resume`, frames are also kept in the store; when the client
 * leaves the run goes on for `windowMs` (at most `maxBufferedFrames` frames)
 * waiting for a reconnect, and only then aborts.
 */
export class StreamRun<T> implements ConnectionOwner {
  readonly #encoder: FrameEncoder<T>
  // Made for a source function; its controller when it reads `signal` (a mediator stream has its own).
  #context: RunContext | undefined
  readonly #options: StreamRunOptions<T>
  readonly #resume: RunResume | undefined
  #sink: RunSink | undefined
  // Cleared when the store fails once: the run goes on without resume.
  #storeUsable = true
  #iterator: AsyncIterator<T> | undefined
  #ended = false
  #framesWhileAway = 0
  #bytesWhileAway = 0
  #window: NodeJS.Timeout | undefined
  // Only while someone listens on the run:* channels.
  #telemetry: RunTelemetry | undefined

  constructor (options: StreamRunOptions<T>) {
    this.#options = options
    this.#resume = options.resume
    this.#encoder = new FrameEncoder(options)
  }

  get streamId (): string { return this.#options.streamId }

  /** The scope a reconnect must come from (resumable runs only). */
  get scope (): string | undefined { return this.#resume?.scope }

  /**
   * Resolves when the run's connection, if it has one, is closed: after
   * `terminate()`, when the client has its last frame or was cut off.
   */
  get closed (): Promise<void> {
    return this.#sink?.done ?? Promise.resolve()
  }

  /** Sends the start frame on `connection` and pumps `source` until it ends. */
  start (connection: SseConnection, source: EventStreamSource<T>): void {
    const { route, command, resume } = this.#options
    this.#telemetry = RunTelemetry.start(this.streamId, route, command, resume !== undefined)
    connection.countBytes(this.#telemetry)
    if (!connection.open()) {
      // The client left before the stream began: run nothing.
      this.#end('disconnect', undefined, undefined)
      return
    }
    this.#sink = connection
    if (this.#resume !== undefined) {
      const { scope, maxBufferedFrames, maxBufferedBytes } = this.#resume
      const traceContext = this.#telemetry?.traceContext
      this.#stored(this.#resume.store.open(this.streamId, traceContext === undefined
        ? { scope, maxFrames: maxBufferedFrames, maxBytes: maxBufferedBytes }
        : { scope, maxFrames: maxBufferedFrames, maxBytes: maxBufferedBytes, traceContext }))
    }
    // Sent with the first frames of the same tick: a short stream is one write.
    this.#emit(this.#encoder.start())
    try {
      const iterable = typeof source === 'function' ? source(this.#sourceContext()) : source
      this.#iterator = iterable[Symbol.asyncIterator]()
    } catch (error) {
      this.#fail(error)
      return
    }
    this.#pump()
  }

  /**
   * Moves the run to a reconnecting client that has seen every frame up to
   * `afterSeq`: replays the kept frames after it and goes on live. A client
   * already attached is dropped. 'unavailable' (nothing sent) when the
   * frames after `afterSeq` are no longer all kept, or `afterSeq` was never
   * sent: the caller answers 204.
   */
  async attach (connection: SseConnection, afterSeq: number): Promise<AttachResult> {
    const store = this.#resume!.store
    if (afterSeq >= this.#encoder.nextSeq || !this.#storeUsable) return 'unavailable'
    // A store may answer asynchronously while new frames come in: read until
    // caught up, then send and switch to live frames within the same tick.
    let missed = ''
    let seen = afterSeq
    while (seen < this.#encoder.nextSeq - 1) {
      const stored = await store.read(this.streamId, seen)
      const first = stored?.frames[0]
      if (first === undefined || first.seq !== seen + 1) return 'unavailable'
      for (const frame of stored!.frames) {
        if (frame.seq === seen + 1) {
          missed += frame.text
          seen = frame.seq
        }
      }
    }
    if (!connection.open()) return 'attached'
    connection.countBytes(this.#telemetry)
    if (this.#ended) {
      // It ended while the store was read: `missed` holds its last frame.
      connection.end(missed)
      return 'attached'
    }
    // Without missed frames the headers go now: the client should not wait for the next frame to see the stream is back.
    if (missed === '') connection.flushHeaders()
    else connection.push(missed)
    this.#replaceSink(connection)
    this.#telemetry?.event('reconnect')
    return 'attached'
  }

  /**
   * A client follows this run from another instance and has every frame up
   * to `seq` (signals from a shared store). The first signal of a follower
   * moves the run to it, as a reconnect here would; later ones report its
   * progress and renew its lease.
   */
  // Signals reach only running resumable runs: OpenStreams forgets a run as it ends.
  remoteFollow (follower: string, seq: number): void {
    const resume = this.#resume!
    const lag = this.#encoder.nextSeq - 1 - seq
    const sink = this.#sink
    if (sink instanceof RemoteSink && sink.follower === follower) {
      sink.progress(lag)
      return
    }
    const highWater = Math.max(1, Math.floor(resume.maxBufferedFrames / 2))
    this.#replaceSink(new RemoteSink(this, follower, lag, highWater, resume.windowMs))
    this.#telemetry?.event('follow')
  }

  /** The client that followed from another instance left. */
  remoteLeft (follower: string): void {
    const sink = this.#sink
    if (sink instanceof RemoteSink && sink.follower === follower) sink.leave()
  }

  #replaceSink (sink: RunSink): void {
    const previous = this.#sink
    this.#sink = sink
    previous?.end()
    clearTimeout(this.#window)
    this.#framesWhileAway = 0
    this.#bytesWhileAway = 0
  }

  /**
   * Ends the run now with an `error` frame carrying `reason` (a shutdown, a
   * cancel), aborts the signal and returns the source. A client that has not
   * read that frame within `graceMs` is disconnected.
   */
  terminate (reason: unknown, graceMs?: number): void {
    if (this.#ended) return
    // Its callers: a cancel (DELETE, or a cancel signal from another instance) and a shutdown.
    const outcome = toPublicError(reason).code === 'FST_ERR_CQRS_STREAM_CANCELLED' ? 'cancel' : 'shutdown'
    this.#end(outcome, this.#encoder.error(toPublicError(reason)), reason, graceMs)
  }

  #sourceContext (): SourceContext {
    return (this.#context = new RunContext(this.streamId))
  }

  async #pump (): Promise<void> {
    const iterator = this.#iterator!
    const encoder = this.#encoder
    try {
      for (;;) {
        const sink = this.#sink
        if (sink !== undefined && sink.blocked) await sink.writable()
        if (this.#ended) return
        const result = await iterator.next()
        if (this.#ended) return
        if (result.done === true) break
        this.#emit(encoder.progress(result.value), true)
      }
    } catch (error) {
      this.#fail(error)
      return
    }
    this.#end('complete', encoder.complete(), undefined)
  }

  #fail (error: unknown): void {
    if (this.#ended) return
    if (isExposed(error)) {
      // A business error ("order not found"): the client is told, nothing is broken.
      const { code, message } = toPublicError(error)
      this.#options.logger.info({ streamId: this.streamId, error: { code, message } }, 'fastify-cqrs-stream: stream ended with an error for the client')
    } else if (isFailure(error)) {
      this.#options.logger.error({ err: error, streamId: this.streamId }, 'fastify-cqrs-stream: stream failed')
    }
    this.#end('error', this.#encoder.error(toPublicError(error)), error)
  }

  // Hot path: one frame to the store (when resumable) and to the client.
  #emit (frame: string, item = false): void {
    this.#telemetry?.frame(item)
    const resume = this.#resume
    if (resume !== undefined && this.#storeUsable) {
      this.#stored(resume.store.append(this.streamId, { seq: this.#encoder.nextSeq - 1, text: flatten(frame) }))
      if (this.#sink === undefined &&
        (++this.#framesWhileAway >= resume.maxBufferedFrames || (this.#bytesWhileAway += frame.length) > resume.maxBufferedBytes)) {
        // The client can no longer get every frame it missed.
        this.#end('overflow', undefined, new StreamAbortedError())
        return
      }
    }
    this.#sink?.push(frame)
  }

  // A store call's outcome: the first failure is logged and ends resume for this run.
  #stored (result: void | Promise<void>): void {
    result?.then(undefined, (error: unknown) => {
      if (!this.#storeUsable) return
      this.#storeUsable = false
      this.#options.logger.warn({ err: error, streamId: this.streamId }, 'fastify-cqrs-stream: the stream store failed; this stream goes on without resume')
      this.#dropLog()
    })
  }

  // A log that no longer gets this run's frames must not read as running:
  // a follower elsewhere would wait on it until its TTL (Redis: 10 min),
  // and a reconnect be served frames with a hole. The store has just
  // failed, so the delete is tried again, backing off, until it lands.
  #dropLog (attempt = 0): void {
    const { store } = this.#resume!
    Promise.resolve().then(() => store.delete(this.streamId)).then(undefined, () => {
      /* c8 ignore next -- giving up after ten minutes of failures is not waited for in tests */
      if (attempt >= DROP_ATTEMPTS) return
      const delayMs = Math.min(DROP_RETRY_MAX_MS, DROP_RETRY_FIRST_MS * 2 ** attempt)
      setTimeout(() => { this.#dropLog(attempt + 1) }, delayMs).unref()
    })
  }

  /**
   * The connection is gone: abort, or with resume wait `windowMs` for a
   * reconnect. Only the current connection can be lost: a replaced or
   * finished one was ended first, and an ended connection reports nothing.
   */
  connectionLost (): void {
    this.#sink = undefined
    const resume = this.#resume
    // Without a working store no reconnect can be served: stop now.
    if (resume === undefined || !this.#storeUsable) {
      this.#end('disconnect', undefined, new StreamAbortedError())
      return
    }
    this.#telemetry?.event('disconnect')
    this.#framesWhileAway = 0
    this.#bytesWhileAway = 0
    this.#window = setTimeout(() => { this.#end('window-expired', undefined, new StreamAbortedError()) }, resume.windowMs)
    this.#window.unref()
  }

  /**
   * Ends the run once: sends `lastFrame` to the connection (a client that
   * has not read it within `graceMs` is cut off), keeps or drops the log,
   * aborts the signal and returns the source when it ends early (`reason`).
   * Without a last frame there is no connection: the client left.
   */
  // Callers check #ended first: every way here happens once.
  #end (outcome: RunOutcome, lastFrame: string | undefined, reason: unknown, graceMs?: number): void {
    this.#ended = true
    clearTimeout(this.#window)
    if (lastFrame !== undefined) this.#sink?.endWithin(lastFrame, graceMs)
    const telemetry = this.#telemetry
    if (telemetry !== undefined) {
      if (lastFrame !== undefined) telemetry.frame(false)
      telemetry.end(outcome, reason)
    }
    const resume = this.#resume
    if (resume !== undefined && this.#storeUsable) {
      const { store } = resume
      if (lastFrame === undefined) {
        this.#stored(store.delete(this.streamId))
      } else {
        this.#stored(store.append(this.streamId, { seq: this.#encoder.nextSeq - 1, text: lastFrame }))
        this.#stored(store.end(this.streamId, resume.windowMs))
      }
    }
    if (reason !== undefined) {
      if (this.#context !== undefined) RunContext.abort(this.#context, reason)
      // Eagerly stop the source; a mediator stream aborts its handler at once, with this reason.
      const iterator = this.#iterator
      const stopping = isTerminable(iterator) ? iterator[terminateSource](reason) : iterator?.return?.()
      stopping?.then(undefined, (error: unknown) => {
        this.#options.logger.error({ err: error }, 'fastify-cqrs-stream: the source threw while being stopped')
      })
    }
    this.#options.onEnd?.(this)
  }
}
