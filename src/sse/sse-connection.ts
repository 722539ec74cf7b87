import type { ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import { HEARTBEAT } from './frame.js'

/** The response object a connection writes to: Node's HTTP/1 or HTTP/2 response. */
export type RawResponse = ServerResponse | Http2ServerResponse

/** Where a connection adds the UTF-8 bytes of the frames it writes (a run's telemetry). */
export interface ByteCounter {
  bytes: number
}

/** Who writes to a connection, and is told when its client leaves. */
export interface ConnectionOwner {
  connectionLost (connection: SseConnection): void
}

export interface SseConnectionOptions {
  /** Ms of silence before a `:` comment is sent; 0 turns heartbeats off. */
  readonly heartbeatMs: number
  /** Response headers besides the SSE ones. */
  readonly headers: Record<string, string | number | readonly string[]>
  /** Told when the response closes before `end()`: the client left. */
  readonly owner: ConnectionOwner
  /** Called just before the headers are sent. */
  readonly onOpen?: (() => void) | undefined
}

// About one socket high-water mark: frames produced in the same turn of the
// event loop are joined into writes of this size instead of a syscall each.
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

// The connection of a response, for the listeners below: shared functions
// instead of closures per connection keep an idle stream small.
const kConnection = Symbol('fastify-cqrs-stream.connection')
type ResponseWithConnection = ServerResponse & { [kConnection]: SseConnection }

function onDrain (this: ResponseWithConnection): void { this[kConnection].responseDrained() }
function onClose (this: ResponseWithConnection): void { this[kConnection].responseClosed() }
function flushTick (connection: SseConnection): void { connection.flushTick() }
function beat (connection: SseConnection): void { connection.beat() }

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
  #wrote = false
  #blocked = false
  #wake: (() => void) | undefined
  #ended = false
  #heartbeat: NodeJS.Timeout | undefined
  #closed = false
  #closeWaiters: Array<() => void> | undefined
  #counter: ByteCounter | undefined

  constructor (res: RawResponse, options: SseConnectionOptions) {
    this.#res = res as ServerResponse
    this.#options = options
  }

  /** Resolves when the response is closed: sent in full, or the connection gone. */
  get done (): Promise<void> {
    // Made on demand (at shutdown): an idle connection holds no promise for it.
    if (this.#closed) return Promise.resolve()
    return new Promise((resolve) => { (this.#closeWaiters ??= []).push(resolve) })
  }

  /** True while the socket's buffer is full: wait for `writable()` before producing more. */
  get blocked (): boolean { return this.#blocked }

  /**
   * Counts the bytes of every write from now on into `counter`. Per write,
   * not per frame: the write flattens its chunk anyway, and measuring each
   * frame's UTF-8 length cost a fifth of a frame's CPU (issue #14).
   */
  countBytes (counter: ByteCounter | undefined): void {
    this.#counter = counter
  }

  #counted (chunk: string): string {
    if (this.#counter !== undefined) this.#counter.bytes += Buffer.byteLength(chunk)
    return chunk
  }

  /** Sends the headers; false (and nothing sent) when the client has already left. */
  open (): boolean {
    const res = this.#res
    if (res.destroyed || res.writableEnded) {
      this.#ended = true
      this.#closed = true
      return false
    }
    this.#options.onOpen?.()
    ;(res as ResponseWithConnection)[kConnection] = this
    res.on('close', onClose)
    res.on('drain', onDrain)
    res.writeHead(200, { ...this.#options.headers, ...SSE_HEADERS })
    return true
  }

  /** Sends the headers now, when no frame is about to go out with them; only right after `open()`. */
  flushHeaders (): void {
    this.#res.flushHeaders()
    this.#keepAlive()
  }

  // The heartbeat starts with the first write: a short stream, written whole
  // by end(), never needs a timer.
  #keepAlive (): void {
    if (this.#heartbeat !== undefined) this.#heartbeat.refresh()
    else if (this.#options.heartbeatMs > 0) {
      this.#heartbeat = setTimeout(beat, this.#options.heartbeatMs, this)
      this.#heartbeat.unref()
    }
  }

  /**
   * Queues a frame; the frames of one tick go out in one write. The first
   * write waits for `setImmediate`, after every promise chain of the turn,
   * so a short stream (start, its items, complete) is a single write; later
   * ones go at `nextTick`, so a live frame is not held behind other streams'
   * timers.
   */
  push (frame: string): void {
    this.#buffer += frame
    if (this.#buffer.length >= FLUSH_BYTES) this.flush()
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true
      if (this.#wrote) process.nextTick(flushTick, this)
      else setImmediate(flushTick, this)
    }
  }

  flush (): void {
    if (this.#buffer === '' || this.#ended) return
    const chunk = this.#buffer
    this.#buffer = ''
    this.#wrote = true
    if (!this.#res.write(this.#counted(chunk))) this.#blocked = true
    this.#keepAlive()
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
      res.end(this.#counted(this.#buffer + lastFrame))
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

  /** @internal the scheduled flush of `push()`. */
  flushTick (): void {
    this.#flushScheduled = false
    this.flush()
  }

  // Listens for the whole response: a write that fills the buffer may happen
  // in a flush tick while the source is still producing, and its `drain`
  // may come before anyone waits for it.
  /** @internal the response's `drain`. */
  responseDrained (): void {
    this.#blocked = false
    this.#wakeUp()
  }

  #wakeUp (): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  /** @internal the heartbeat timer; cleared on end, so it never fires on an ended response. */
  beat (): void {
    if (!this.#blocked && this.#buffer === '') this.#res.write(HEARTBEAT)
    this.#heartbeat!.refresh()
  }

  /** @internal the response's `close`. */
  responseClosed (): void {
    this.#closed = true
    const waiters = this.#closeWaiters
    this.#closeWaiters = undefined
    if (waiters !== undefined) for (const resolve of waiters) resolve()
    // 'close' after end() is the normal end, not a disconnect.
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#heartbeat)
    this.#buffer = ''
    this.#blocked = false
    this.#wakeUp()
    this.#options.owner.connectionLost(this)
  }
}
