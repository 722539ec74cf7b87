import type { ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import { StreamAbortedError } from '../errors.js'
import { FrameEncoder, type FrameEncoderOptions } from './frame-encoder.js'
import { HEARTBEAT } from './frame.js'
import { isFailure, toPublicError } from './public-error.js'

/** The response object the writer writes to: Node's HTTP/1 or HTTP/2 response. */
export type RawResponse = ServerResponse | Http2ServerResponse

/** Where the writer reports source failures it turned into `error` frames. */
export interface WriterLogger {
  error (object: object, message: string): void
}

/** What a source function gets: build the iterable with it. */
export interface SourceContext {
  /** Aborted when the client leaves or the stream is terminated. */
  readonly signal: AbortSignal
  /** The id in every frame's `id:` and in the start frame. */
  readonly streamId: string
}

/** An async iterable, or a function that builds one from the stream's signal and id. */
export type EventStreamSource<T> = AsyncIterable<T> | ((context: SourceContext) => AsyncIterable<T>)

export interface EventStreamWriterOptions<T> extends FrameEncoderOptions<T> {
  /** Ms of silence before a `:` comment is sent; 0 turns heartbeats off. */
  readonly heartbeatMs: number
  /** Response headers besides the SSE ones. */
  readonly headers: Record<string, string | number | readonly string[]>
  readonly logger: WriterLogger
  /** Called once the stream has ended, whichever way. */
  readonly onEnd?: ((writer: EventStreamWriter<T>) => void) | undefined
}

// About one socket high-water mark: frames produced in the same tick are
// joined into writes of this size instead of a syscall each.
const FLUSH_BYTES = 16 * 1024

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
}

/**
 * Writes an async iterable to a response as SSE frames. Frames from one
 * tick are coalesced; when the socket's buffer is full the writer stops
 * pulling until `drain`, the client leaving, or termination, whichever comes
 * first. The client leaving (the response closing before it finished)
 * aborts `signal` and returns the source iterator.
 */
export class EventStreamWriter<T> {
  // Typed as HTTP/1's response: HTTP/2's has the same members we use.
  readonly #res: ServerResponse
  readonly #encoder: FrameEncoder<T>
  readonly #controller = new AbortController()
  readonly #options: EventStreamWriterOptions<T>
  #iterator: AsyncIterator<T> | undefined
  #buffer = ''
  #flushScheduled = false
  #blocked = false
  #wake: (() => void) | undefined
  #ended = false
  #heartbeat: NodeJS.Timeout | undefined
  #resolveDone: (() => void) | undefined
  readonly #done: Promise<void>

  constructor (res: RawResponse, options: EventStreamWriterOptions<T>) {
    this.#res = res as ServerResponse
    this.#options = options
    this.#encoder = new FrameEncoder(options)
    this.#done = new Promise((resolve) => { this.#resolveDone = resolve })
  }

  /** Resolves when the response is closed: sent in full, or the connection gone. */
  get done (): Promise<void> { return this.#done }

  /** Send headers and the start frame, then pump `source` until it ends. */
  start (source: EventStreamSource<T>): void {
    const res = this.#res
    if (res.destroyed || res.writableEnded) {
      // The client left before the stream began: run nothing.
      this.#ended = true
      this.#options.onEnd?.(this)
      this.#resolveDone!()
      return
    }
    res.on('close', this.#onClose)
    res.on('drain', this.#onDrain)
    res.writeHead(200, { ...this.#options.headers, ...SSE_HEADERS })
    this.#push(this.#encoder.start())
    this.#flush()
    if (this.#options.heartbeatMs > 0) {
      this.#heartbeat = setTimeout(this.#beat, this.#options.heartbeatMs)
      this.#heartbeat.unref()
    }
    try {
      const iterable = typeof source === 'function' ? source({ signal: this.#controller.signal, streamId: this.#options.streamId }) : source
      this.#iterator = iterable[Symbol.asyncIterator]()
    } catch (error) {
      this.#fail(error)
      return
    }
    this.#pump()
  }

  /**
   * End the stream now with an `error` frame carrying `reason` (e.g. a
   * shutdown), abort the signal and return the source. A client that has
   * not read that last frame within `graceMs` is disconnected, so a reader
   * that stalled cannot hold the server open.
   */
  terminate (reason: unknown, graceMs?: number): void {
    this.#end(this.#encoder.error(toPublicError(reason)), reason)
    const res = this.#res
    if (graceMs === undefined || res.destroyed || res.writableFinished) return
    const timer = setTimeout(() => { res.destroy() }, graceMs)
    timer.unref()
    res.once('close', () => { clearTimeout(timer) })
  }

  async #pump (): Promise<void> {
    const iterator = this.#iterator!
    const encoder = this.#encoder
    try {
      for (;;) {
        if (this.#blocked) await this.#drained()
        if (this.#ended) return
        const result = await iterator.next()
        if (this.#ended) return
        if (result.done === true) break
        this.#push(encoder.progress(result.value))
      }
    } catch (error) {
      this.#fail(error)
      return
    }
    this.#end(encoder.complete(), undefined)
  }

  #fail (error: unknown): void {
    if (this.#ended) return
    if (isFailure(error)) this.#options.logger.error({ err: error }, 'fastify-cqrs-stream: stream failed')
    this.#end(this.#encoder.error(toPublicError(error)), error)
  }

  #push (frame: string): void {
    this.#buffer += frame
    if (this.#buffer.length >= FLUSH_BYTES) this.#flush()
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true
      process.nextTick(this.#flushTick)
    }
  }

  readonly #flushTick = (): void => {
    this.#flushScheduled = false
    if (!this.#ended) this.#flush()
  }

  #flush (): void {
    if (this.#buffer === '') return
    const chunk = this.#buffer
    this.#buffer = ''
    if (!this.#res.write(chunk)) this.#blocked = true
    this.#heartbeat?.refresh()
  }

  #drained (): Promise<void> {
    return new Promise((resolve) => { this.#wake = resolve })
  }

  // Listens for the whole stream: a write that fills the buffer may happen
  // in a flush tick while the source is still producing, and its `drain`
  // may come before the pump waits for it.
  readonly #onDrain = (): void => {
    this.#blocked = false
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  // Cleared on end, so it never fires on an ended stream.
  readonly #beat = (): void => {
    if (!this.#blocked && this.#buffer === '') this.#res.write(HEARTBEAT)
    this.#heartbeat!.refresh()
  }

  readonly #onClose = (): void => {
    this.#resolveDone!()
    // 'close' after a finished response is the normal end, not a disconnect.
    if (this.#ended) return
    this.#end(undefined, new StreamAbortedError())
  }

  /** Writes the last frame (if the client is still there), then tears down once. */
  #end (lastFrame: string | undefined, reason: unknown): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#heartbeat)
    const res = this.#res
    if (lastFrame !== undefined && !res.destroyed) {
      res.end(this.#buffer + lastFrame)
    } else if (!res.writableEnded) {
      res.destroy()
    }
    this.#buffer = ''
    this.#wake?.()
    if (reason !== undefined) {
      this.#controller.abort(reason)
      // Eagerly stop the source; a mediator stream aborts its handler at once.
      this.#iterator?.return?.()?.then(undefined, (error: unknown) => {
        this.#options.logger.error({ err: error }, 'fastify-cqrs-stream: the source threw while being stopped')
      })
    }
    this.#options.onEnd?.(this)
  }
}
