import type { AwilixContainer } from 'awilix'
import type { FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { StreamingRequestMediator } from '../mediator/streaming-request-mediator.js'
import { InMemoryStreamStore } from '../resume/in-memory-stream-store.js'
import type { EventStreamSource } from '../sse/stream-run.js'
import { startEventStream, type EventStreamOptions, type StreamDefaults } from './event-stream-reply.js'
import { Admission } from './admission.js'
import { OpenStreams } from './open-streams.js'
import { PendingStreams } from './pending-streams.js'
import { validatePluginOptions, type FastifyCqrsStreamOptions } from './plugin-options.js'
import { resolveLimits } from './stream-limits.js'
import { streamRouteDecorator } from './stream-route.js'
import './fastify-types.js'

async function cqrsStream (app: FastifyInstance, options: FastifyCqrsStreamOptions): Promise<void> {
  validatePluginOptions(options)
  // @fastify/awilix's container is used when present; per-stream scopes are
  // ours to dispose, since its request.diScope is not disposed on abort.
  const diContainer = app.hasDecorator('diContainer')
    ? (app as unknown as { diContainer: AwilixContainer }).diContainer
    : undefined
  const mediator = new StreamingRequestMediator({
    ...options,
    logger: options.logger ?? app.log,
    container: options.container ?? diContainer,
  })
  const defaults: StreamDefaults = {
    heartbeatMs: options.heartbeatMs ?? 15_000,
    namedEvents: options.namedEvents ?? false,
    retryMs: options.retryMs,
  }
  const open = new OpenStreams(options.streamStore ?? new InMemoryStreamStore())
  const pending = new PendingStreams(open.store, open.releaseOwner)
  const admission = new Admission(resolveLimits(options.limits), open, pending)
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000
  // Signals of a shared store (a client resuming elsewhere, a cancel) from the first request on.
  await open.listen(closeTimeoutMs, app.log, pending.forget)

  app.decorate('mediator', mediator)
  app.decorate('streamRoute', streamRouteDecorator({
    mediator, open, pending, admission, defaults, streamOwner: options.streamOwner, cancelRoutes: new Set(),
  }))
  app.decorate('streamStats', () => open.stats(pending.size))
  app.decorateReply('eventStream', function eventStream<T> (this: FastifyReply, source: EventStreamSource<T>, streamOptions: EventStreamOptions<T> = {}) {
    return startEventStream(this, source, streamOptions, defaults, open, admission)
  })

  // onReady: after every plugin registered its dependencies.
  if (options.verifyHandlers !== false) app.addHook('onReady', () => mediator.verifyHandlers({ fastifyRequest: undefined, caller: undefined }))

  // preClose runs before the server stops accepting and waiting for
  // connections; open SSE responses would otherwise hold close() forever.
  app.addHook('preClose', async () => {
    pending.clear()
    await open.shutdown(closeTimeoutMs)
    await mediator.close({ timeoutMs: closeTimeoutMs })
  })
}

/**
 * The fastify-cqrs-stream plugin: decorates the app with `mediator` and
 * `streamRoute`, and replies with `reply.eventStream`.
 * @example
 * await app.register(fastifyCqrsStream, {
 *   requests: (map) => map.bind(ProcessOrdersCommand, ProcessOrdersHandler),
 * })
 * app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand })
 */
export const fastifyCqrsStream = fp(cqrsStream, {
  fastify: '5.x',
  name: 'fastify-cqrs-stream',
})
