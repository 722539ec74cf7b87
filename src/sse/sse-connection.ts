import type { ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import { HEARTBEAT } from './frame.js'

/** The response object a connection writes to: Node's HTTP/1 or HTTP/2 response. */
export type RawResponse = ServerResponse | Http2ServerResponse

export interface SseConnectionOptions {
  /** Ms of silence before a `:` comment is sent; 0 turns heartbeats off. */
  readonly heartbeatMs: number
  /** Response headers besides the SSE ones. */
  readonly headers: Record<string, string | number | readonly string[]>
  /** The response closed before `end()`: the client left. */
  readonly onLost: (connection: SseConnection) => void
  /** Called just before the headers are sent. */
  readonly onOpen?: (() => void) | undefined
}

// About one socket high-water mark: frames produced in the same tick are
// joined into writes of this size instead of a syscall each.
const FLUSH_BYTES = 16 * 1024

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
}

/** A whole event stream in one write: the replay of a stream that has ended. */
export function sendEventStream (res: RawResponse, headers: SseConnectionOptions['headers'], body: string): void {
  const response = res as ServerResponse
  response.writeHead(200, { ...headers, ...SSE_HEADERS })
  response.end(body)
}

/**
 * One SSE response: headers, coalesced writes, backpressure and heartbeat.
 * It knows nothing of where frames come from, so a resumable stream can
 * move from one connection to the next.
 */
export class SseConnection {
  // Typed as HTTP/1's response: HTTP/2's has the same members we use.
  readonly #res: ServerResponse
  readonly #options: SseConnectionOptions
  #buffer = ''
  #flushScheduled = false
  #blocked = false
  #wake: (() => void) | undefined
  #ended = false
  #heartbeat: NodeJS.Timeout | undefined
  #resolveDone: (() => void) | undefined
  readonly #done: Promise<void>

  constructor (res: RawResponse, options: SseConnectionOptions) {
    this.#res = res as ServerResponse
    this.#options = options
    this.#done = new Promise((resolve) => { this.#resolveDone = resolve })
  }

  /** Resolves when the response is closed: sent in full, or the connection gone. */
  get done (): Promise<void> { return this.#done }

  /** True while the socket's buffer is full: wait for `writable()` before producing more. */
  get blocked (): boolean { return this.#blocked }

  /** Sends the headers; false (and nothing sent) when the client has already left. */
  open (): boolean {
    const res = this.#res
    if (res.destroyed || res.writableEnded) {
      this.#ended = true
      this.#resolveDone!()
      return false
    }
    this.#options.onOpen?.()
    res.on('close', this.#onClose)
    res.on('drain', this.#onDrain)
    res.writeHead(200, { ...this.#options.headers, ...SSE_HEADERS })
    if (this.#options.heartbeatMs > 0) {
      this.#heartbeat = setTimeout(this.#beat, this.#options.heartbeatMs)
      this.#heartbeat.unref()
    }
    return true
  }

  /** Sends the headers now, when no frame is about to go out with them. */
  flushHeaders (): void {
    if (!this.#ended) this.#res.flushHeaders()
  }

  /** Queues a frame; frames queued in one tick go out in one write. */
  push (frame: string): void {
    this.#buffer += frame
    if (this.#buffer.length >= FLUSH_BYTES) this.flush()
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true
      process.nextTick(this.#flushTick)
    }
  }

  flush (): void {
    if (this.#buffer === '' || this.#ended) return
    const chunk = this.#buffer
    this.#buffer = ''
    if (!this.#res.write(chunk)) this.#blocked = true
    this.#heartbeat?.refresh()
  }

  /** While `blocked`: resolves on `drain`, on the client leaving, or on `end()`. */
  writable (): Promise<void> {
    return new Promise((resolve) => { this.#wake = resolve })
  }

  /** Sends what is queued plus `lastFrame` and ends the response; without a last frame, drops the connection. */
  end (lastFrame?: string): void {
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
    this.#blocked = false
    this.#wakeUp()
  }

  /** Ends with `lastFrame`; a client that has not read it within `graceMs` is disconnected. */
  endWithin (lastFrame: string, graceMs: number | undefined): void {
    this.end(lastFrame)
    const res = this.#res
    if (graceMs === undefined || res.destroyed || res.writableFinished) return
    const timer = setTimeout(() => { res.destroy() }, graceMs)
    timer.unref()
    res.once('close', () => { clearTimeout(timer) })
  }

  readonly #flushTick = (): void => {
    this.#flushScheduled = false
    this.flush()
  }

  // Listens for the whole response: a write that fills the buffer may happen
  // in a flush tick while the source is still producing, and its `drain`
  // may come before anyone waits for it.
  readonly #onDrain = (): void => {
    this.#blocked = false
    this.#wakeUp()
  }

  #wakeUp (): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  // Cleared on end, so it never fires on an ended response.
  readonly #beat = (): void => {
    if (!this.#blocked && this.#buffer === '') this.#res.write(HEARTBEAT)
    this.#heartbeat!.refresh()
  }

  readonly #onClose = (): void => {
    this.#resolveDone!()
    // 'close' after end() is the normal end, not a disconnect.
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#heartbeat)
    this.#buffer = ''
    this.#blocked = false
    this.#wakeUp()
    this.#options.onLost(this)
  }
}
