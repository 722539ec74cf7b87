import { STREAM_HTTP, STREAM_LOST, StreamCommandError } from './client-errors.js'
import type { AnyFrame } from './frames.js'
import { SseLineParser, type SseMessage } from './sse-line-parser.js'
import { nextAttempt, receive, type ConnectionContext } from './stream-state.js'

/** One request of a command's stream; reconnects repeat it with `Last-Event-ID`. */
export interface StreamRequest {
  readonly url: URL
  readonly method: 'GET' | 'POST'
  readonly body: unknown
  readonly headers: Readonly<Record<string, string>>
}

const EVENT_STREAM = /^text\/event-stream\s*(?:;|$)/i

function ignore (): void {}

/** Sends `request`, resuming after `lastEventId` when one is given. */
export function send (request: StreamRequest, context: ConnectionContext, lastEventId?: string): Promise<Response> {
  const headers: Record<string, string> = { accept: 'text/event-stream', ...request.headers }
  if (request.body !== undefined) headers['content-type'] = 'application/json'
  if (lastEventId !== undefined) headers['last-event-id'] = lastEventId
  return context.fetch(request.url, {
    method: request.method,
    headers,
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
    signal: context.signal,
  })
}

/**
 * Resolves when `response` is an event stream. A 204 means the server has
 * no stream to give (it ended, or cannot be resumed): `FST_ERR_CQRS_STREAM_LOST`.
 * Anything else throws the code of its JSON body, else `fallbackCode`.
 */
export async function expectEventStream (response: Response, fallbackCode: string, streamId?: string): Promise<void> {
  if (response.status === 204) {
    throw new StreamCommandError(STREAM_LOST, 'fastify-cqrs-stream: the server has no stream to send (204 No Content).', { streamId, statusCode: 204 })
  }
  const type = response.headers.get('content-type') ?? ''
  if (response.ok && EVENT_STREAM.test(type)) return
  const body = await response.json().catch(ignore) as { code?: unknown, message?: unknown } | null | undefined
  throw new StreamCommandError(
    typeof body?.code === 'string' ? body.code : fallbackCode,
    typeof body?.message === 'string'
      ? body.message
      : `fastify-cqrs-stream: the server answered ${response.status} (${type || 'no content-type'}), not an event stream.`,
    { streamId, statusCode: response.status }
  )
}

/** The stream url a two-step command's `202 { streamId, url }` names, resolved against the POST url. */
export async function twoStepUrl (response: Response, postUrl: URL): Promise<URL> {
  const body = await response.json().catch(ignore) as { url?: unknown } | null | undefined
  if (typeof body?.url !== 'string') {
    throw new StreamCommandError(STREAM_HTTP, 'fastify-cqrs-stream: the server answered 202 without the stream\'s url.', { statusCode: 202 })
  }
  return new URL(body.url, postUrl)
}

function sleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** The frames of one response body, until the last frame, or until the body ends or is cut. */
async function * framesOf<TResult> (response: Response, context: ConnectionContext): AsyncGenerator<AnyFrame<TResult>, void> {
  const { state, signal } = context
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  const messages: SseMessage[] = []
  const parser = new SseLineParser({
    onMessage: (message) => { messages.push(message) },
    onRetry: (ms) => { state.retryMs = ms },
    maxFrameLength: context.maxFrameLength,
  })
  try {
    for (;;) {
      let read: Awaited<ReturnType<typeof reader.read>>
      try {
        read = await reader.read()
      } catch {
        signal.throwIfAborted()
        return
      }
      if (read.done) return
      parser.push(decoder.decode(read.value, { stream: true }))
      for (const message of messages.splice(0)) {
        const frame = receive<TResult>(state, message.data, message.lastEventId)
        if (frame !== undefined) yield frame
        if (state.finished) return
      }
      if (parser.error !== undefined) throw parser.error
    }
  } finally {
    // Closes the connection: nothing more is read from it.
    reader.cancel().then(ignore, ignore)
  }
}

/** A reconnect that answers with an event stream, after waiting `retryMs` before each attempt. */
async function reconnect (request: StreamRequest, context: ConnectionContext): Promise<Response> {
  const { state, signal } = context
  for (;;) {
    nextAttempt(context)
    await sleep(state.retryMs, signal)
    let response: Response
    try {
      response = await send(request, context, state.lastEventId)
    } catch {
      // The server is unreachable: another attempt, unless we are closing.
      signal.throwIfAborted()
      continue
    }
    await expectEventStream(response, STREAM_LOST, state.streamId)
    return response
  }
}

/**
 * The frames of `first` (an event stream answer to `request`) and, when
 * the connection drops before the last frame, of reconnects that resume
 * after the last frame received. Ends after the `complete` frame.
 */
export async function * fetchFrames<TResult> (request: StreamRequest, first: Response, context: ConnectionContext): AsyncGenerator<AnyFrame<TResult>, void> {
  let response = first
  for (;;) {
    yield * framesOf<TResult>(response, context)
    if (context.state.finished) return
    response = await reconnect(request, context)
  }
}
