// The client is self-contained (it runs in browsers without a bundler), so
// it does not import src/errors.ts: the codes it throws are plain strings.

/** The connection was lost and the stream could not be resumed. */
export const STREAM_LOST = 'FST_ERR_CQRS_STREAM_LOST'
/** The server answered the command with something other than an event stream. */
export const STREAM_HTTP = 'FST_ERR_CQRS_STREAM_HTTP'
/** The event stream held a frame that is not one of this package's. */
export const STREAM_PROTOCOL = 'FST_ERR_CQRS_STREAM_PROTOCOL'
/** `streamCommand()` got a url it cannot resolve: a relative one with no `baseUrl` and no page, or not a url at all. */
export const INVALID_URL = 'FST_ERR_CQRS_STREAM_INVALID_URL'
/** One event of the stream grew past `maxFrameLength`: the stream was closed (and cancelled, when resumable). */
export const FRAME_TOO_LARGE = 'FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE'
/** `streamCommand()` got an option it cannot use. */
export const INVALID_OPTION = 'FST_ERR_CQRS_STREAM_INVALID_OPTION'

/**
 * Where a {@link StreamCommandError} came from, besides its code and message.
 * @example
 * new StreamCommandError('FST_ERR_VALIDATION', 'body/orderIds must NOT have fewer than 1 items', { statusCode: 400 })
 */
export interface StreamCommandErrorOptions {
  /** The stream's id, once its `start` frame arrived. */
  readonly streamId?: string | undefined
  /** The HTTP status, when the error is an HTTP answer. */
  readonly statusCode?: number | undefined
  readonly cause?: unknown
}

/**
 * What `streamCommand()` throws for an `error` frame (its `code` and
 * `message`), an HTTP error answer (the code of its JSON body, else
 * `FST_ERR_CQRS_STREAM_HTTP`, with `statusCode`), a stream that was lost
 * and could not be resumed (`FST_ERR_CQRS_STREAM_LOST`), a frame that is
 * not this package's (`FST_ERR_CQRS_STREAM_PROTOCOL`), a frame longer than
 * `maxFrameLength` (`FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE`), a url it cannot
 * resolve (`FST_ERR_CQRS_STREAM_INVALID_URL`) or a bad option
 * (`FST_ERR_CQRS_STREAM_INVALID_OPTION`). Match on `code`.
 * @example
 * try {
 *   for await (const frame of streamCommand('/orders/process', { body: { orderIds: ['a'] } })) show(frame)
 * } catch (error) {
 *   if (error instanceof StreamCommandError && error.code === 'FST_ERR_VALIDATION') showInvalid(error.message)
 *   else throw error
 * }
 */
export class StreamCommandError extends Error {
  override readonly name = 'StreamCommandError'
  readonly code: string
  readonly streamId: string | undefined
  readonly statusCode: number | undefined

  constructor (code: string, message: string, options: StreamCommandErrorOptions = {}) {
    super(message, { cause: options.cause })
    this.code = code
    this.streamId = options.streamId
    this.statusCode = options.statusCode
  }
}

export function frameTooLarge (maxFrameLength: number): StreamCommandError {
  return new StreamCommandError(
    FRAME_TOO_LARGE,
    `fastify-cqrs-stream: an event of the stream grew past maxFrameLength (${maxFrameLength} characters): raise the option if frames this large are expected.`
  )
}
