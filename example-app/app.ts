import { asClass, asValue, createContainer } from 'awilix'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyCqrsStream, { InMemoryMessageBroker, type MessageBroker } from '../src/index.js'
import { OrderAnalyticsHandler, OrderProcessedHandler, ProcessOrdersHandler } from './handlers.js'
import { OrderAnalyticsEvent, OrderProcessedEvent, OrderProcessedResult, ProcessOrdersCommand } from './messages.js'
import { clientModules } from './client-modules.js'
import { indexPage } from './page.js'
import { AnalyticsService, OrderService } from './services.js'

export interface BuildAppOptions {
  /** Simulated work per order, in ms. */
  orderDelayMs: number
  /** Where `OrderShipped` notifications go. @default new InMemoryMessageBroker() */
  broker?: MessageBroker
  /** Fastify's logger option. @default no logging */
  logger?: FastifyServerOptions['logger']
  /** The order service, e.g. a spy in tests. @default an OrderService taking `orderDelayMs` per order */
  orders?: OrderService
  /** The plugin's `retryMs`: the reconnect delay sent to EventSource. @default none (the browser's own) */
  retryMs?: number
}

/**
 * Builds the orders demo: two streaming routes, a page that consumes one,
 * and the client the page imports, at /client/<file>.js.
 */
export async function buildApp (options: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger })

  const container = createContainer({ strict: true }).register({
    orderDelayMs: asValue(options.orderDelayMs),
    logger: asValue(app.log),
    orders: options.orders === undefined ? asClass(OrderService).singleton() : asValue(options.orders),
    analytics: asClass(AnalyticsService).singleton(),
  })

  await app.register(fastifyCqrsStream, {
    container,
    requests: (map) => map.bind(ProcessOrdersCommand, ProcessOrdersHandler),
    events: (map) => map
      .bind(OrderProcessedEvent, OrderProcessedHandler)
      .bind(OrderAnalyticsEvent, OrderAnalyticsHandler),
    messageBroker: options.broker ?? new InMemoryMessageBroker(),
    retryMs: options.retryMs,
  })

  // The command from a JSON body: for fetch() and curl.
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  // The command from the query string: for EventSource, which can only GET.
  app.streamRoute({ method: 'GET', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })

  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(indexPage))

  // The typed client (src/client/), as plain ESM for the page.
  const modules = await clientModules()
  app.get<{ Params: { file: string } }>('/client/:file', (request, reply) => {
    const code = modules.get(request.params.file)
    if (code === undefined) return reply.callNotFound()
    return reply.type('text/javascript; charset=utf-8').send(code)
  })

  return app
}
