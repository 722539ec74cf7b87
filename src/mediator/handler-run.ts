import type { StreamingRequestHandler } from '../handlers/streaming-request-handler.js'
import type { StreamContext } from '../handlers/stream-context.js'
import type { Event } from '../messages/event.js'
import type { RequestMessage } from '../messages/request.js'

/**
 * Runs a streaming handler and hands on each item only after the events
 * emitted while producing it were dispatched, including those emitted after
 * the last yield. Whatever way it ends, the handler's generator is returned
 * (its `finally` runs) and its undelivered events are dropped. It is the
 * innermost source of a stream with middlewares; without them, the stream
 * does the same steps itself (MediatorStream#pull).
 */
export async function * handlerRun (
  handler: StreamingRequestHandler,
  request: RequestMessage,
  context: StreamContext,
  target: { dispatchEvents (events: Event[]): Promise<void> }
): AsyncGenerator<unknown, void, undefined> {
  const iterator = handler.handle(request, context)[Symbol.asyncIterator]()
  let finished = false
  try {
    for (;;) {
      let result: IteratorResult<unknown>
      try {
        result = await iterator.next()
      } catch (error) {
        // A generator that threw is closed; there is nothing to return.
        finished = true
        throw error
      }
      finished = result.done === true
      const events = handler.takeEvents()
      if (events !== undefined) await target.dispatchEvents(events)
      if (finished) return
      yield result.value
    }
  } finally {
    handler.clearEvents()
    if (!finished) await iterator.return?.()
  }
}
