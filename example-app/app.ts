import { asClass, asValue, createContainer } from 'awilix'
import type { ItemTransactions } from '../src/postgres/index.js'
import type { Http2SecureServer } from 'node:http2'
import Fastify, { type FastifyHttp2SecureOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyCqrsStream, { InMemoryMessageBroker, type MessageBroker, type StreamStore } from '../src/index.js'
import { OrderAnalyticsHandler, OrderProcessedHandler, ProcessOrdersHandler } from './handlers.js'
import { OrderAnalyticsEvent, OrderProcessedEvent, ProcessOrdersCommand } from './messages.js'
import { MemoryOrderLog, PostgresOrderLog } from './order-log.js'
import { clientModules } from './client-modules.js'
import { indexPage } from './page.js'
import { tripPage } from './trip-page.js'
import { BookTripCommand, BookTripSaga, TripDesk } from './trip-saga.js'
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
  /** The plugin's `retryMs`: the reconnect delay sent to EventSource. @default 1000 (resumable streams) */
  retryMs?: number
  /** Where resumable streams keep their frames; a RedisStreamStore shares them between instances. @default in memory */
  streamStore?: StreamStore
  /** This instance's name, sent as the `x-instance` header and by GET /health (the cluster demo). @default 'orders-demo' */
  instance?: string
  /** Serve HTTPS with HTTP/2 (and HTTP/1.1 for clients without it) with this key and certificate. @default plain HTTP/1.1 */
  tls?: { key: string, cert: string }
  /**
   * With the PostgreSQL outbox (the cluster demo): orders are written to
   * PostgreSQL in each item's transaction, committed with their events.
   * @default orders are recorded in memory
   */
  itemTransactions?: ItemTransactions
  /** The trip saga's bookings (GET /trips), e.g. to look at in tests. @default a new TripDesk */
  tripDesk?: TripDesk
  /**
   * Called on the new app before any route is added: an `onRoute` hook set
   * here sees every route (example-app/telemetry.ts gives each request a span).
   */
  beforeRoutes?: (app: FastifyInstance) => void
}

/**
 * Builds the orders demo: resumable streaming routes (GET, POST and a
 * two-step POST), a page that consumes the GET one,
 * and the client the page imports, at /client/<file>.js.
 */
export async function buildApp (options: BuildAppOptions): Promise<FastifyInstance> {
  // Over HTTP/2 a page's streams share one connection: no 6-per-origin limit.
  const app = options.tls === undefined
    ? Fastify({ logger: options.logger })
    : Fastify({ logger: options.logger as FastifyHttp2SecureOptions<Http2SecureServer>['logger'], http2: true, https: { ...options.tls, allowHTTP1: true } }) as unknown as FastifyInstance
  options.beforeRoutes?.(app)

  const container = createContainer({ strict: true }).register({
    orderDelayMs: asValue(options.orderDelayMs),
    logger: asValue(app.log),
    orders: options.orders === undefined ? asClass(OrderService).singleton() : asValue(options.orders),
    analytics: asClass(AnalyticsService).singleton(),
    tripDesk: asValue(options.tripDesk ?? new TripDesk()),
    stepDelayMs: asValue(options.orderDelayMs),
  })
  const items = options.itemTransactions
  if (items === undefined) container.register({ orderLog: asClass(MemoryOrderLog).singleton() })
  else container.register({ tx: items.resolver, orderLog: asClass(PostgresOrderLog).scoped() })

  await app.register(fastifyCqrsStream, {
    container,
    requests: (map) => map.bind(ProcessOrdersCommand, ProcessOrdersHandler).bind(BookTripCommand, BookTripSaga),
    events: (map) => map
      .bind(OrderProcessedEvent, OrderProcessedHandler)
      .bind(OrderAnalyticsEvent, OrderAnalyticsHandler),
    messageBroker: options.broker ?? new InMemoryMessageBroker(),
    retryMs: options.retryMs,
    streamStore: options.streamStore,
    middlewares: items === undefined ? [] : [items.middleware],
  })

  // Which instance served a request: behind the cluster demo's proxy, a
  // resumed stream shows it came from the other one.
  const instance = options.instance ?? 'orders-demo'
  app.addHook('onRequest', async (_request, reply) => { reply.header('x-instance', instance) })
  app.get('/health', async () => ({ status: 'ok', instance }))

  // Resumable: a stream outlives a dropped connection for 30 s, and a
  // reconnect with Last-Event-ID gets the frames it missed; DELETE
  // /orders/process/<streamId> cancels it.
  const resume = { windowMs: 30_000, maxBufferedFrames: 1000 }
  // The command from a JSON body: for fetch() and curl.
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, resume })
  // The command from the query string: for EventSource, which can only GET.
  app.streamRoute({ method: 'GET', url: '/orders/process', request: ProcessOrdersCommand, resume })
  // Two steps: POST /orders answers 202 { streamId, url }; GET url streams it.
  // For commands too big for a query string, or sent with an auth header.
  app.streamRoute({ method: 'POST', url: '/orders', request: ProcessOrdersCommand, twoStep: true })

  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(indexPage))

  // The saga demo: each step a frame, compensated when one fails or on cancel.
  app.streamRoute({ method: 'GET', url: '/trips/book', request: BookTripCommand, resume })
  app.get('/trips', (_request, reply) => reply.type('text/html; charset=utf-8').send(tripPage))

  // The typed client (src/client/), as plain ESM for the page.
  const modules = await clientModules()
  app.get<{ Params: { file: string } }>('/client/:file', (request, reply) => {
    const code = modules.get(request.params.file)
    if (code === undefined) return reply.callNotFound()
    return reply.type('text/javascript; charset=utf-8').send(code)
  })

  return app
}
