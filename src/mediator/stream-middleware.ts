import type { StreamContext } from '../handlers/stream-context.js'
import type { RequestMessage } from '../messages/request.js'

/**
 * Wraps every stream of the mediator, outermost first: logging, metrics,
 * authorisation, item mapping. Call `next()` once to get the inner stream;
 * not calling it stops the command from running at all.
 * @example
 * const timing: StreamMiddleware = async function * (request, next, { streamId }) {
 *   const started = performance.now()
 *   try { yield * next() } finally { log.info({ streamId, ms: performance.now() - started }) }
 * }
 */
export type StreamMiddleware = (
  request: RequestMessage,
  next: () => AsyncIterable<unknown>,
  context: StreamContext
) => AsyncIterable<unknown>
