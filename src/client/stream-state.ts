import { STREAM_LOST, StreamCommandError } from './client-errors.js'
import { parseFrame, type AnyFrame } from './frames.js'

/**
 * What `onReconnecting` is told before each reconnect.
 * @example
 * { attempt: 1, lastEventId: '0f9e…:4' }
 */
export interface ReconnectInfo {
  /** 1 for the first reconnect after frames last arrived, 2 for the next… */
  readonly attempt: number
  /** The id the reconnect resumes after (sent as `Last-Event-ID`). */
  readonly lastEventId: string | undefined
}

/** One stream's progress, shared by the iterator and the connection that feeds it. */
export interface StreamState {
  /** Where the frames come from: the command's url, or the url a two-step POST answered. */
  streamUrl: URL
  streamId: string | undefined
  cancelUrl: string | undefined
  /** The id of the last frame received: where a reconnect resumes. */
  lastEventId: string | undefined
  lastSeq: number
  /** Reconnects in a row that brought no new frame. */
  failures: number
  /** Wait before a reconnect: the server's `retry:` hint, else 1000 ms. */
  retryMs: number
  /** Set once the `complete` or `error` frame arrived. */
  finished: boolean
}

/** What a connection (EventSource or fetch) needs from the iterator. */
export interface ConnectionContext {
  readonly state: StreamState
  /** Aborted to close the connection: the stream ended, was left, or the caller aborted. */
  readonly signal: AbortSignal
  readonly fetch: typeof fetch
  readonly maxReconnects: number
  /** The most characters one event may hold. */
  readonly maxFrameLength: number
  readonly onReconnecting: (info: ReconnectInfo) => void
}

const SEQ = /:(\d+)$/

export function lostError (state: StreamState, why: string): StreamCommandError {
  return new StreamCommandError(STREAM_LOST, `fastify-cqrs-stream: the stream was lost: ${why}.`, { streamId: state.streamId })
}

/**
 * Takes in one event as it arrives (not when the caller gets to it, so a
 * reconnect knows where to resume): the frame, or undefined for one seen
 * before or of an unknown type. A resume must never repeat a frame.
 */
export function receive<TResult> (state: StreamState, data: string, id: string): AnyFrame<TResult> | undefined {
  const match = SEQ.exec(id)
  if (match !== null && Number(match[1]) <= state.lastSeq) return undefined
  const frame = parseFrame<TResult>(data, id)
  if (match !== null) state.lastSeq = Number(match[1])
  state.lastEventId = id
  state.failures = 0
  if (frame?.type === 'start') {
    state.streamId = frame.streamId
    state.cancelUrl = frame.cancelUrl
  }
  state.finished = frame?.type === 'complete' || frame?.type === 'error'
  return frame
}

/**
 * Counts a reconnect and tells `onReconnecting`; throws
 * `FST_ERR_CQRS_STREAM_LOST` after `maxReconnects` in a row, or when no
 * frame arrived yet: without an id to resume from, the server would run
 * the command again.
 */
export function nextAttempt (context: ConnectionContext): void {
  const { state } = context
  if (state.lastEventId === undefined) throw lostError(state, 'the connection closed before the first frame')
  if (state.failures >= context.maxReconnects) throw lostError(state, `${context.maxReconnects} reconnects in a row brought no frame`)
  state.failures++
  context.onReconnecting({ attempt: state.failures, lastEventId: state.lastEventId })
}
