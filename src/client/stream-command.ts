import { FRAME_TOO_LARGE, INVALID_OPTION, INVALID_URL, STREAM_HTTP, StreamCommandError } from './client-errors.js'
import type { BodyOf, ProgressOf } from './command-types.js'
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
export interface StreamCommandOptions<TBody = unknown> {
  /** The command, sent as JSON; typed by `streamCommand<typeof Command>`. */
  body?: TBody
  /**
   * What a relative `url` is resolved against. In a browser the page's
   * address is used when it is not set; in Node a relative url needs it.
   * @example
   * streamCommand('/orders/process', { baseUrl: 'http://127.0.0.1:3000', body })
   */
  baseUrl?: string | URL
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
  /**
   * The most characters (`string.length`) one event of the stream may
   * hold. A frame that grows past it ends the iterator with
   * `FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE` and cancels a resumable stream:
   * a resume would bring the same frame again. Read with `fetch`, the
   * check runs while the frame arrives, so memory stays bounded; a
   * browser's `EventSource` parses by itself, so there the frame is
   * checked once it arrived whole. `Infinity` turns the check off.
   * @default 16 * 1024 * 1024
   * @example
   * streamCommand('/imports', { body, maxFrameLength: 64 * 1024 * 1024 })
   */
  maxFrameLength?: number
  /**
   * Pick up a stream this page followed before a reload, instead of sending
   * the command: the `id` of the last frame it received, and the start
   * frame's `cancelUrl` if it may cancel. The url is the stream's (for a
   * two-step command, the `url` of its `202`). The server replays the frames
   * after that id and goes on live, on any instance that shares its stream
   * store; nothing runs twice. The start frame is not sent again.
   * @example
   * streamCommand(saved.url, { resume: { lastEventId: saved.lastEventId, cancelUrl: saved.cancelUrl } })
   */
  resume?: ResumePoint
}

/** Where a resumed stream picks up: see {@link StreamCommandOptions.resume}. */
export interface ResumePoint {
  /** The `id` of the last frame received, `<streamId>:<seq>`. */
  readonly lastEventId: string
  /** The start frame's `cancelUrl`: aborting the iterator then cancels the stream. */
  readonly cancelUrl?: string | undefined
}

const RESUME_POINT = /^(.+):(0|[1-9]\d*)$/

const DEFAULT_RETRY_MS = 1000
const DEFAULT_MAX_RECONNECTS = 5
const DEFAULT_MAX_FRAME_LENGTH = 16 * 1024 * 1024

function ignore (): void {}

function withLastEventId (url: URL, lastEventId: string | undefined): URL {
  if (lastEventId === undefined) return url
  const resumed = new URL(url)
  resumed.searchParams.set('lastEventId', lastEventId)
  return resumed
}

function parseUrl (url: string | URL, base?: string | URL): URL | undefined {
  // Not URL.canParse: browsers before 2024 lack it.
  try {
    return new URL(url, base)
  } catch {
    return undefined
  }
}

function resolveUrl (url: string | URL, baseUrl: string | URL | undefined): URL {
  // Relative urls resolve against baseUrl, else the page in a browser.
  const base = baseUrl ?? (globalThis as { location?: { href: string } }).location?.href
  if (base !== undefined && parseUrl(base) === undefined) {
    throw new StreamCommandError(INVALID_URL, `fastify-cqrs-stream: baseUrl must be an absolute url, got "${String(base)}".`)
  }
  const resolved = parseUrl(url, base)
  if (resolved !== undefined) return resolved
  throw new StreamCommandError(INVALID_URL, base === undefined
    ? `fastify-cqrs-stream: "${String(url)}" is a relative url and there is no page to resolve it against: pass an absolute url, or the server's address as the baseUrl option.`
    : `fastify-cqrs-stream: "${String(url)}" is not a url.`)
}

/** Opens the stream: EventSource for a GET when there is one, else fetch; follows a two-step `202`. */
async function * connect<TResult> (
  url: URL,
  options: StreamCommandOptions,
  context: ConnectionContext
): AsyncGenerator<AnyFrame<TResult>, void> {
  const method = options.method ?? (options.body === undefined ? 'GET' : 'POST')
  const EventSourceClass = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource
  const resumeId = context.state.lastEventId
  if (method === 'GET' && options.headers === undefined && EventSourceClass !== undefined) {
    // EventSource cannot send Last-Event-ID on its first request: the server also takes it from the query.
    return yield * eventSourceFrames<TResult>(EventSourceClass, withLastEventId(url, resumeId), context)
  }
  let request: StreamRequest = { url, method, body: options.body, headers: options.headers ?? {} }
  let response = await send(request, context, resumeId)
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
  const { maxFrameLength = DEFAULT_MAX_FRAME_LENGTH } = options
  if (!(maxFrameLength > 0) || (!Number.isInteger(maxFrameLength) && maxFrameLength !== Infinity)) {
    throw new StreamCommandError(INVALID_OPTION, `fastify-cqrs-stream: maxFrameLength must be a positive integer or Infinity, got ${String(maxFrameLength)}.`)
  }
  const point = options.resume === undefined ? undefined : RESUME_POINT.exec(String(options.resume.lastEventId))
  if (point === null) {
    throw new StreamCommandError(INVALID_OPTION, `fastify-cqrs-stream: resume.lastEventId must be a frame id <streamId>:<seq>, got ${String(options.resume?.lastEventId)}.`)
  }
  signal?.throwIfAborted()
  const state: StreamState = {
    streamUrl: resolveUrl(url, options.baseUrl),
    streamId: point?.[1],
    cancelUrl: options.resume?.cancelUrl,
    lastEventId: point?.[0],
    lastSeq: point === undefined ? -1 : Number(point[2]),
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
    maxFrameLength,
    onReconnecting: options.onReconnecting ?? ignore,
  }
  // Closing the connection is not enough for a resumable stream, which
  // survives a disconnect: when the caller stops (abort, break) it is
  // cancelled with its DELETE url, once. A stream that failed is not: the
  // server has none left to cancel, or (a page being unloaded) another page
  // may resume it.
  const close = (cancel: boolean): void => {
    closer.abort(signal?.reason)
    const cancelUrl = state.cancelUrl
    state.cancelUrl = undefined
    if (cancel && !state.finished && cancelUrl !== undefined) fetchImpl(new URL(cancelUrl, state.streamUrl), { method: 'DELETE' }).then(ignore, ignore)
  }
  const cancelled = (): void => { close(true) }
  signal?.addEventListener('abort', cancelled, { once: true })
  let failed = false
  try {
    for await (const frame of connect<TResult>(state.streamUrl, options, context)) {
      // Frames already read when the caller aborted are not delivered.
      signal?.throwIfAborted()
      if (frame.type === 'error') throw new StreamCommandError(frame.error.code, frame.error.message, { streamId: state.streamId })
      // Closed before the caller gets the last frame: it may take its time.
      if (frame.type === 'complete') close(false)
      yield frame
    }
  } catch (error) {
    if (signal?.aborted === true) throw signal.reason
    // Too large a frame is the caller's limit, not a failure of the stream: cancelled, as on a break.
    failed = !(error instanceof StreamCommandError && error.code === FRAME_TOO_LARGE)
    throw error
  } finally {
    signal?.removeEventListener('abort', cancelled)
    close(!failed)
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
 * aborts; the last two also cancel a resumable stream on the server. A
 * stream that fails (an `error` frame, a lost connection) is not cancelled:
 * a page reloaded mid-run may resume it with `resume`.
 * @example
 * import { streamCommand } from 'fastify-cqrs-stream/client'
 *
 * import type { ProcessOrdersCommand } from '../server/messages.js'
 *
 * // The command class (a type-only import) types the body and the progress data.
 * for await (const frame of streamCommand<typeof ProcessOrdersCommand>('/orders/process', { body: { orderIds: ['a', 'b'] } })) {
 *   if (frame.type === 'progress') console.log(frame.data.orderId)
 * }
 */
export function streamCommand<T = unknown> (url: string | URL, options: StreamCommandOptions<BodyOf<T>> = {}): AsyncIterableIterator<StreamFrame<ProgressOf<T>>> {
  return run<ProgressOf<T>>(url, options)
}
