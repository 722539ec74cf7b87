import { INVALID_OPTION, STREAM_HTTP, StreamCommandError } from './client-errors.js'
import { eventSourceFrames, type EventSourceConstructor } from './event-source-connection.js'
import { expectEventStream, fetchFrames, send, twoStepUrl, type StreamRequest } from './fetch-connection.js'
import type { AnyFrame, StreamFrame } from './frames.js'
import type { ConnectionContext, ReconnectInfo, StreamState } from './stream-state.js'

/**
 * Options of {@link streamCommand}.
 * @example
 * const controller = new AbortController()
 * streamCommand('/orders/process', {
 *   body: { orderIds: ['a', 'b'] },
 *   signal: controller.signal,
 *   onReconnecting: ({ attempt }) => { status.textContent = `reconnecting (${attempt})…` },
 * })
 */
export interface StreamCommandOptions {
  /** The command, sent as JSON. */
  body?: unknown
  /** @default 'POST' with a body, else 'GET' */
  method?: 'GET' | 'POST'
  /** Aborting it closes the connection, cancels a resumable stream on the server and rejects the iterator with its reason. */
  signal?: AbortSignal
  /** Extra request headers. A `GET` with headers is read with `fetch`, as `EventSource` cannot send them. */
  headers?: Record<string, string>
  /** The `EventSource` class for `GET` streams. @default globalThis.EventSource; without one, `fetch` reads the stream */
  EventSource?: EventSourceConstructor
  /** @default globalThis.fetch */
  fetch?: typeof fetch
  /** Called before each reconnect after the connection dropped mid-stream. */
  onReconnecting?: (info: ReconnectInfo) => void
  /**
   * Reconnects in a row that may bring no new frame before the iterator
   * rejects with `FST_ERR_CQRS_STREAM_LOST`.
   * @default 5
   */
  maxReconnects?: number
}

const DEFAULT_RETRY_MS = 1000
const DEFAULT_MAX_RECONNECTS = 5

function ignore (): void {}

function resolveUrl (url: string | URL): URL {
  // Relative urls resolve against the page in a browser; in Node they must be absolute.
  return new URL(url, (globalThis as { location?: { href: string } }).location?.href)
}

/** Opens the stream: EventSource for a GET when there is one, else fetch; follows a two-step `202`. */
async function * connect<TResult> (
  url: URL,
  options: StreamCommandOptions,
  context: ConnectionContext
): AsyncGenerator<AnyFrame<TResult>, void> {
  const method = options.method ?? (options.body === undefined ? 'GET' : 'POST')
  const EventSourceClass = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource
  if (method === 'GET' && options.headers === undefined && EventSourceClass !== undefined) {
    return yield * eventSourceFrames<TResult>(EventSourceClass, url, context)
  }
  let request: StreamRequest = { url, method, body: options.body, headers: options.headers ?? {} }
  let response = await send(request, context)
  if (response.status === 202) {
    const streamUrl = await twoStepUrl(response, url)
    context.state.streamUrl = streamUrl
    if (EventSourceClass !== undefined) return yield * eventSourceFrames<TResult>(EventSourceClass, streamUrl, context)
    request = { url: streamUrl, method: 'GET', body: undefined, headers: request.headers }
    response = await send(request, context)
  }
  await expectEventStream(response, STREAM_HTTP)
  return yield * fetchFrames<TResult>(request, response, context)
}

async function * run<TResult> (url: string | URL, options: StreamCommandOptions): AsyncGenerator<StreamFrame<TResult>, void, undefined> {
  const { signal, maxReconnects = DEFAULT_MAX_RECONNECTS } = options
  if (!Number.isInteger(maxReconnects) || maxReconnects < 0) {
    throw new StreamCommandError(INVALID_OPTION, `fastify-cqrs-stream: maxReconnects must be a non-negative integer, got ${String(maxReconnects)}.`)
  }
  signal?.throwIfAborted()
  const state: StreamState = {
    streamUrl: resolveUrl(url),
    streamId: undefined,
    cancelUrl: undefined,
    lastEventId: undefined,
    lastSeq: -1,
    failures: 0,
    retryMs: DEFAULT_RETRY_MS,
    finished: false,
  }
  const closer = new AbortController()
  const fetchImpl: typeof fetch = (input, init) => (options.fetch ?? globalThis.fetch)(input, init)
  const context: ConnectionContext = {
    state,
    signal: closer.signal,
    fetch: fetchImpl,
    maxReconnects,
    onReconnecting: options.onReconnecting ?? ignore,
  }
  // Closing the connection is not enough for a resumable stream, which
  // survives a disconnect: it is cancelled with its DELETE url, once.
  const close = (): void => {
    closer.abort(signal?.reason)
    const cancelUrl = state.cancelUrl
    state.cancelUrl = undefined
    if (!state.finished && cancelUrl !== undefined) fetchImpl(new URL(cancelUrl, state.streamUrl), { method: 'DELETE' }).then(ignore, ignore)
  }
  signal?.addEventListener('abort', close, { once: true })
  try {
    for await (const frame of connect<TResult>(state.streamUrl, options, context)) {
      // Frames already read when the caller aborted are not delivered.
      signal?.throwIfAborted()
      if (frame.type === 'error') throw new StreamCommandError(frame.error.code, frame.error.message, { streamId: state.streamId })
      // Closed before the caller gets the last frame: it may take its time.
      if (frame.type === 'complete') close()
      yield frame
    }
  } catch (error) {
    if (signal?.aborted === true) throw signal.reason
    throw error
  } finally {
    signal?.removeEventListener('abort', close)
    close()
  }
}

/**
 * Runs a command of a `fastify-cqrs-stream` route and iterates its frames:
 * `start`, one `progress` per result, `complete`. An `error` frame rejects
 * the iterator with a `StreamCommandError` of its code. `GET` uses
 * `EventSource` (when there is one), `POST` reads the response with
 * `fetch`; a `202 { streamId, url }` answer (a two-step route) is followed
 * by a `GET` of `url`. A connection that drops mid-stream is resumed with
 * `Last-Event-ID`, never re-run, and no frame is delivered twice. The
 * connection is closed on the last frame, on `break`, and when `signal`
 * aborts (which also cancels a resumable stream on the server).
 * @example
 * import { streamCommand } from 'fastify-cqrs-stream/client'
 *
 * for await (const frame of streamCommand<OrderProcessedResult>('/orders/process', { body: { orderIds: ['a', 'b'] } })) {
 *   if (frame.type === 'progress') console.log(frame.data.orderId)
 * }
 */
export function streamCommand<TResult = unknown> (url: string | URL, options: StreamCommandOptions = {}): AsyncIterableIterator<StreamFrame<TResult>> {
  return run<TResult>(url, options)
}
