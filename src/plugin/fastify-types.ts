import type { StreamingRequestMediator } from '../mediator/streaming-request-mediator.js'
import type { EventStreamSource } from '../sse/stream-run.js'
import type { EventStreamOptions } from './event-stream-reply.js'
import type { StreamStats } from './open-streams.js'
import type { StreamRequestClass, StreamRouteOptions } from './stream-route-options.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The streaming mediator of this app: `app.mediator.stream(command)`. */
    mediator: StreamingRequestMediator
    /**
     * Declare a streaming route for a bound request class. Its frames are
     * serialised and documented by the class's `result` (or `response`, for
     * a class declared without one).
     * @example
     * app.streamRoute({ method: 'GET', url: '/orders/process', request: ProcessOrdersCommand })
     */
    streamRoute<TRequest extends StreamRequestClass> (options: StreamRouteOptions<TRequest>): FastifyInstance
    /**
     * What this instance holds now, against its `limits`: for a metrics
     * endpoint, a health check, or the 3 a.m. question "why 503?".
     * @example
     * app.get('/health', async () => ({ streams: app.streamStats() }))
     */
    streamStats (): StreamStats
  }
  interface FastifyReply {
    /**
     * Reply with an SSE stream of `source`: a `start` frame, a `progress`
     * frame per item, then `complete` (or `error`). The reply is hijacked;
     * the client leaving aborts the source.
     * @example
     * app.get('/ticks', (request, reply) => reply.eventStream(async function * ({ signal }) {
     *   for (let i = 0; i < 3 && !signal.aborted; i++) yield { tick: i }
     * }))
     */
    eventStream<T> (source: EventStreamSource<T>, options?: EventStreamOptions<T>): FastifyReply
  }
}
