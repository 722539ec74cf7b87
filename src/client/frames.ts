import { STREAM_PROTOCOL, StreamCommandError } from './client-errors.js'

/**
 * The first frame of a stream.
 * @example
 * { type: 'start', streamId: '0f9e…', id: '0f9e…:0' }
 */
export interface StartFrame {
  readonly type: 'start'
  readonly streamId: string
  /** The frame's SSE id, `<streamId>:<seq>`. */
  readonly id: string
  /** Where a resumable stream can be cancelled (`DELETE`); set by resumable routes. */
  readonly cancelUrl?: string
}

/**
 * One result of the command.
 * @example
 * { type: 'progress', data: { orderId: 'a', status: 'processed' }, id: '0f9e…:1' }
 */
export interface ProgressFrame<TResult = unknown> {
  readonly type: 'progress'
  readonly data: TResult
  readonly id: string
}

/**
 * The last frame of a stream that succeeded.
 * @example
 * { type: 'complete', id: '0f9e…:3' }
 */
export interface CompleteFrame {
  readonly type: 'complete'
  readonly id: string
}

/**
 * A frame `streamCommand()` yields. An `error` frame is never yielded: it is
 * thrown as a `StreamCommandError`.
 * @example
 * for await (const frame of streamCommand<OrderResult>(url)) {
 *   if (frame.type === 'progress') show(frame.data.orderId)
 * }
 */
export type StreamFrame<TResult = unknown> = StartFrame | ProgressFrame<TResult> | CompleteFrame

/**
 * The last frame of a stream that failed; thrown as a `StreamCommandError`, not yielded.
 * @example
 * { type: 'error', id: '0f9e…:2', error: { code: 'FST_ERR_CQRS_STREAM_HANDLER_FAILED', message: '…' } }
 */
export interface ErrorFrame {
  readonly type: 'error'
  readonly id: string
  readonly error: { readonly code: string, readonly message: string }
}

/** Any frame of the wire format. */
export type AnyFrame<TResult = unknown> = StreamFrame<TResult> | ErrorFrame

type Fields = Record<string, unknown>

function isFields (value: unknown): value is Fields {
  return typeof value === 'object' && value !== null
}

function protocolError (data: string): StreamCommandError {
  return new StreamCommandError(STREAM_PROTOCOL, `fastify-cqrs-stream: not a frame of this package: ${data.slice(0, 200)}`)
}

function errorOf (frame: Fields, data: string): ErrorFrame['error'] {
  const error = frame.error
  if (!isFields(error) || typeof error.code !== 'string' || typeof error.message !== 'string') throw protocolError(data)
  return { code: error.code, message: error.message }
}

/**
 * The frame in one event's data; undefined for a frame `type` this client
 * does not know (a newer server's). Throws `FST_ERR_CQRS_STREAM_PROTOCOL`
 * for data that is not a frame.
 */
export function parseFrame<TResult> (data: string, id: string): AnyFrame<TResult> | undefined {
  let frame: unknown
  try {
    frame = JSON.parse(data)
  } catch {
    throw protocolError(data)
  }
  if (!isFields(frame) || typeof frame.type !== 'string') throw protocolError(data)
  switch (frame.type) {
    case 'start':
      if (typeof frame.streamId !== 'string') throw protocolError(data)
      return typeof frame.cancelUrl === 'string'
        ? { type: 'start', streamId: frame.streamId, id, cancelUrl: frame.cancelUrl }
        : { type: 'start', streamId: frame.streamId, id }
    case 'progress':
      return { type: 'progress', data: frame.data as TResult, id }
    case 'complete':
      return { type: 'complete', id }
    case 'error':
      return { type: 'error', id, error: errorOf(frame, data) }
    default:
      return undefined
  }
}
