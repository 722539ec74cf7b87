import { frameTooLarge, STREAM_HTTP, StreamCommandError } from './client-errors.js'
import type { AnyFrame } from './frames.js'
import { lostError, nextAttempt, receive, type ConnectionContext } from './stream-state.js'

/**
 * What the client uses of an event: a frame's `MessageEvent`, or a
 * connection `error` event (no data).
 * @example
 * { data: '{"type":"complete"}', lastEventId: '0f9e…:3' }
 */
export interface EventSourceEventLike {
  readonly data?: unknown
  readonly lastEventId?: string
}

/**
 * The part of the WHATWG `EventSource` the client uses; the browser's and
 * the `eventsource` npm package's both fit.
 * @example
 * const source: EventSourceLike = new EventSource('/orders/process?orderIds=a')
 */
export interface EventSourceLike {
  readonly readyState: number
  addEventListener (type: string, listener: (event: EventSourceEventLike) => void): void
  close (): void
}

/**
 * An `EventSource` class.
 * @example
 * import { EventSource } from 'eventsource'
 * streamCommand(url, { EventSource })
 */
export type EventSourceConstructor = new (url: string) => EventSourceLike

const CONNECTING = 0
// `error` is also EventSource's connection error event: a frame is the one with data.
const FRAME_EVENTS = ['message', 'start', 'progress', 'complete', 'error']

type Item<TResult> = { readonly frame: AnyFrame<TResult> } | { readonly error: unknown }

/**
 * The frames of `url` through an `EventSource`, which reconnects by itself
 * and sends `Last-Event-ID`. It is closed as soon as the last frame arrives,
 * before the caller reads it: left open, it would reconnect when the server
 * ends the response.
 */
export async function * eventSourceFrames<TResult> (
  EventSourceClass: EventSourceConstructor,
  url: URL,
  context: ConnectionContext
): AsyncGenerator<AnyFrame<TResult>, void> {
  const { state, signal } = context
  const source = new EventSourceClass(url.href)
  const queue: Array<Item<TResult>> = []
  let wake!: () => void
  const nextWake = (): Promise<void> => new Promise((resolve) => { wake = resolve })
  let woken = nextWake()
  // A resume (after a page reload) that the server refuses is a lost stream, like a failed reconnect.
  let opened = state.lastEventId !== undefined
  const push = (item: Item<TResult>): void => {
    queue.push(item)
    wake()
  }
  const fail = (error: unknown): void => {
    source.close()
    push({ error })
  }
  const onFrame = (event: EventSourceEventLike): void => {
    if (typeof event.data !== 'string') {
      onConnectionError()
      return
    }
    try {
      if (event.data.length > context.maxFrameLength) throw frameTooLarge(context.maxFrameLength)
      const frame = receive<TResult>(state, event.data, String(event.lastEventId))
      if (state.finished) source.close()
      if (frame !== undefined) push({ frame })
    } catch (error) {
      fail(error)
    }
  }
  const onConnectionError = (): void => {
    if (source.readyState !== CONNECTING) {
      // Closed for good: a 204, an HTTP error or a response that is not an event stream.
      fail(opened
        ? lostError(state, 'the server cannot resume it')
        : new StreamCommandError(STREAM_HTTP, 'fastify-cqrs-stream: the event stream could not be opened (see the browser console for the HTTP status).', { streamId: state.streamId }))
      return
    }
    try {
      nextAttempt(context)
    } catch (error) {
      fail(error)
    }
  }
  const onAbort = (): void => {
    source.close()
    wake()
  }
  for (const type of FRAME_EVENTS) source.addEventListener(type, onFrame)
  source.addEventListener('open', () => { opened = true })
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    for (;;) {
      signal.throwIfAborted()
      const item = queue.shift()
      if (item === undefined) {
        await woken
        woken = nextWake()
      } else if ('error' in item) {
        throw item.error
      } else {
        yield item.frame
        if (item.frame.type === 'complete') return
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort)
    source.close()
  }
}
