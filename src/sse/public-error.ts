import { HandlerFailedError } from '../errors.js'

/** What an `error` frame tells the client. */
export interface PublicError {
  readonly code: string
  readonly message: string
}

const OWN_CODE = 'FST_ERR_CQRS_STREAM_'
// Its message names routes, schemas and fields for the log: the server's
// bug, not the client's, so the client gets a generic one.
const SERIALIZATION = 'FST_ERR_CQRS_STREAM_SERIALIZATION'
const serializationFailed: PublicError = Object.freeze({
  code: SERIALIZATION,
  message: 'fastify-cqrs-stream: the server could not send a result. The server log has the details.',
})
const fallback: PublicError = Object.freeze({
  code: new HandlerFailedError().code,
  message: new HandlerFailedError().message,
})

/**
 * The part of an error that may reach a client. This package's own coded
 * errors and errors marked `expose: true` (the http-errors convention) show
 * their code and message; anything else becomes a generic
 * `FST_ERR_CQRS_STREAM_HANDLER_FAILED`, never a stack or internal message.
 */
export function toPublicError (error: unknown): PublicError {
  if (typeof error !== 'object' || error === null) return fallback
  const { code, message, expose } = error as { code?: unknown, message?: unknown, expose?: unknown }
  if (typeof message !== 'string') return fallback
  if (code === SERIALIZATION) return serializationFailed
  if (typeof code === 'string' && code.startsWith(OWN_CODE)) return { code, message }
  if (expose === true) return { code: typeof code === 'string' ? code : fallback.code, message }
  return fallback
}

/** True for an error meant for the client (`expose: true`, a business error), not a bug. */
export function isExposed (error: unknown): boolean {
  return (error as { expose?: unknown } | null)?.expose === true
}

/** True for errors that should be logged as failures (not an abort, a cancel or a shutdown). */
export function isFailure (error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code !== 'FST_ERR_CQRS_STREAM_ABORTED' && code !== 'FST_ERR_CQRS_STREAM_SHUTDOWN' &&
    code !== 'FST_ERR_CQRS_STREAM_CANCELLED'
}
