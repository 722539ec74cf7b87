import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import { errors, Request, Response, StreamingRequestHandler, type StreamContext } from '../src/index.js'
import { ordersApp, type OrdersApp, type Teardown } from './fixtures/app-orders.js'
import { complete, error, progress, sseText, start, streamIdOf } from './fixtures/app-sse.js'
import {
  OrderProcessedResult, PROCESSED_AT, ProcessOrdersCommand, ProcessOrdersHandler, resultOf,
} from './fixtures/orders-domain.js'

const json = { 'content-type': 'application/json' }
const handlerFailed = new errors.HandlerFailedError()

// Yields results with a field the response schema does not have.
class AuditCommand extends Request(Type.Object({ orderIds: Type.Array(Type.String(), { minItems: 1 }) })) {}
class AuditHandler extends StreamingRequestHandler<AuditCommand, Record<string, unknown>> {
  async * handle (command: AuditCommand): AsyncGenerator<Record<string, unknown>> {
    for (const orderId of command.orderIds) yield { ...resultOf(orderId), internalCost: 42 }
  }
}

// Reads the Fastify request it is built for, from the stream's scope.
class WhoAmICommand extends Request(Type.Object({})) {}
class WhoAmIResult extends Response(Type.Object({ tenant: Type.String(), url: Type.String(), feature: Type.Optional(Type.String()) })) {}
class WhoAmIHandler extends StreamingRequestHandler<WhoAmICommand, WhoAmIResult> {
  readonly #request: FastifyRequest

  constructor ({ fastifyRequest }: { fastifyRequest: FastifyRequest }) {
    super()
    this.#request = fastifyRequest
  }

  async * handle (_command: WhoAmICommand, { signal }: StreamContext): AsyncGenerator<WhoAmIResult> {
    signal.throwIfAborted()
    const request = this.#request
    const { feature } = request.routeOptions.config as { feature?: string }
    yield new WhoAmIResult({ tenant: String(request.headers['x-tenant']), url: request.url, feature })
  }
}

class UnboundCommand extends Request(Type.Object({})) {}

/** The orders app, with the AuditCommand and WhoAmICommand bound too. */
function appWithExtras (t: Teardown): Promise<OrdersApp> {
  return ordersApp(t, {
    requests: (map) => map
      .bind(ProcessOrdersCommand, ProcessOrdersHandler)
      .bind(AuditCommand, AuditHandler)
      .bind(WhoAmICommand, WhoAmIHandler),
  })
}

// A route's own config, typed as Fastify users declare it.
declare module 'fastify' {
  interface FastifyContextConfig {
    feature?: string
  }
}

t.test('POST: the JSON body is the command; start, a progress frame per result, complete', async (t) => {
  const { app, orders, broker } = await ordersApp(t)
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const res = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a', 'bb'] } })
  t.equal(res.statusCode, 200)
  t.match(res.headers, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
  })
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress(resultOf('a')), progress(resultOf('bb')), complete()]))
  t.same(orders.processed, ['a', 'bb'])
  t.same(orders.recorded, ['a', 'bb'], 'domain events reached their handler')
  t.same(broker.messages.map((m) => m.payload), [{ orderId: 'a' }, { orderId: 'bb' }], 'notification events reached the broker')
  t.equal(orders.handlersBuilt, 1)
})

t.test('progress data is serialised by the response schema: fields not in it are dropped', async (t) => {
  const { app } = await appWithExtras(t)
  app.streamRoute({ method: 'POST', url: '/audit', request: AuditCommand, response: OrderProcessedResult })
  app.streamRoute({ method: 'POST', url: '/audit-raw', request: AuditCommand })

  const res = await app.inject({ method: 'POST', url: '/audit', payload: { orderIds: ['a'] } })
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress(resultOf('a')), complete()]))
  t.notMatch(res.body, 'internalCost')

  const raw = await app.inject({ method: 'POST', url: '/audit-raw', payload: { orderIds: ['a'] } })
  const rawId = streamIdOf(raw.body)
  t.equal(raw.body, sseText(rawId, [start(rawId), progress({ ...resultOf('a'), internalCost: 42 }), complete()]),
    'without a response class every field is sent (JSON.stringify)')
})

t.test('GET: the command comes from the query string; a repeated or single key becomes an array', async (t) => {
  const { app } = await ordersApp(t)
  app.streamRoute({ method: 'GET', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })

  const two = await app.inject({ method: 'GET', url: '/orders/process?orderIds=a&orderIds=bb' })
  t.equal(two.statusCode, 200)
  const sid = streamIdOf(two.body)
  t.equal(two.body, sseText(sid, [start(sid), progress(resultOf('a')), progress(resultOf('bb')), complete()]))

  const one = await app.inject({ method: 'GET', url: '/orders/process?orderIds=a' })
  const oneId = streamIdOf(one.body)
  t.equal(one.body, sseText(oneId, [start(oneId), progress(resultOf('a')), complete()]))
})

t.test('GET: a query string that does not match the schema is a 400 and runs nothing', async (t) => {
  const { app, orders } = await ordersApp(t)
  app.streamRoute({ method: 'GET', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  for (const url of ['/orders/process', '/orders/process?orderIds=', '/orders/process?other=a']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 400, url)
    t.match(res.headers['content-type'], /^application\/json/)
    t.equal(res.json().code, 'FST_ERR_VALIDATION', url)
  }
  t.equal(orders.handlersBuilt, 0)
})

t.test('POST: a body that does not match the schema is a 400 JSON error and the handler never runs', async (t) => {
  const { app, orders } = await ordersApp(t)
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const bodies = [{}, [], { orderIds: [] }, { orderIds: [''] }, { orderIds: [{}] }, { orderIds: Array(101).fill('a') }]
  for (const payload of bodies) {
    const res = await app.inject({ method: 'POST', url: '/orders/process', payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 40))
    t.match(res.headers['content-type'], /^application\/json/)
    t.match(res.json(), { statusCode: 400, code: 'FST_ERR_VALIDATION' })
  }
  t.equal(orders.handlersBuilt, 0)
  t.same(orders.processed, [])
})

t.test('a client field named constructor cannot redirect the dispatch (POST and GET)', async (t) => {
  const { app } = await ordersApp(t)
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  app.streamRoute({ method: 'GET', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const posted = await app.inject({ method: 'POST', url: '/orders/process', headers: json, payload: '{"orderIds":["a"],"constructor":"x"}' })
  const sid = streamIdOf(posted.body)
  t.equal(posted.body, sseText(sid, [start(sid), progress(resultOf('a')), complete()]))
  const got = await app.inject({ method: 'GET', url: '/orders/process?orderIds=a&constructor=x' })
  const gid = streamIdOf(got.body)
  t.equal(got.body, sseText(gid, [start(gid), progress(resultOf('a')), complete()]))
})

t.test('POST: malformed JSON is a 400, an unknown content type a 415, a body over bodyLimit a 413', async (t) => {
  const { app, orders } = await ordersApp(t)
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult, bodyLimit: 64 })

  const malformed = await app.inject({ method: 'POST', url: '/orders/process', headers: json, payload: '{"orderIds":["a"' })
  t.equal(malformed.statusCode, 400)
  t.equal(malformed.json().code, 'FST_ERR_CTP_INVALID_JSON_BODY')

  const xml = await app.inject({ method: 'POST', url: '/orders/process', headers: { 'content-type': 'application/xml' }, payload: '<orderIds/>' })
  t.equal(xml.statusCode, 415)
  t.equal(xml.json().code, 'FST_ERR_CTP_INVALID_MEDIA_TYPE')

  // Fastify would parse text/plain itself; a command must be JSON.
  const text = await app.inject({ method: 'POST', url: '/orders/process', headers: { 'content-type': 'text/plain' }, payload: '{"orderIds":["a"]}' })
  t.equal(text.statusCode, 415)
  t.equal(text.json().code, 'FST_ERR_CTP_INVALID_MEDIA_TYPE')

  const vendor = await app.inject({
    method: 'POST', url: '/orders/process', headers: { 'content-type': 'application/vnd.orders+json; charset=utf-8' }, payload: '{"orderIds":["a"]}',
  })
  t.equal(vendor.statusCode, 415, 'a +json type without a parser is still refused by Fastify')

  const big = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a'.repeat(80)] } })
  t.equal(big.statusCode, 413)
  t.equal(big.json().code, 'FST_ERR_CTP_BODY_TOO_LARGE')

  t.equal(orders.handlersBuilt, 0)
  const fits = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a'] } })
  t.equal(fits.statusCode, 200, 'a body under the limit streams')
  t.equal(orders.handlersBuilt, 1)
})

t.test('streamRoute refuses what it cannot serve, at registration', async (t) => {
  const { app } = await ordersApp(t)
  t.throws(() => app.streamRoute({ method: 'POST', url: '/unbound', request: UnboundCommand }), { code: 'FST_ERR_CQRS_STREAM_NO_HANDLER' })
  const invalid: unknown[] = [
    undefined,
    null,
    'POST /x',
    { method: 'PUT', url: '/x', request: ProcessOrdersCommand },
    { method: 'post', url: '/x', request: ProcessOrdersCommand },
    { url: '/x', request: ProcessOrdersCommand },
    { method: 'POST', request: ProcessOrdersCommand },
    { method: 'POST', url: '/x' },
    { method: 'POST', url: '/x', request: class NotARequest {} },
    { method: 'POST', url: '/x', request: OrderProcessedResult },
  ]
  for (const options of invalid) {
    t.throws(() => app.streamRoute(options as Parameters<typeof app.streamRoute>[0]), { code: 'FST_ERR_CQRS_STREAM_INVALID_ROUTE' },
      String(JSON.stringify(options)))
  }
  await t.resolves(async () => { await app.ready() }, 'no half-registered route is left behind')
  t.equal(app.hasRoute({ method: 'POST', url: '/x' }), false)
  t.equal(app.hasRoute({ method: 'POST', url: '/unbound' }), false)
})

t.test('other route options pass through: hooks, config, schema extras', async (t) => {
  const { app } = await appWithExtras(t)
  const seen: string[] = []
  app.streamRoute({
    method: 'POST',
    url: '/tenants/:tenantId/whoami',
    request: WhoAmICommand,
    response: WhoAmIResult,
    config: { feature: 'whoami' },
    onRequest: async (request) => { seen.push(`onRequest ${request.url}`) },
    preHandler: [async (request) => { seen.push(`preHandler ${JSON.stringify(request.params)}`) }],
    schema: {
      headers: Type.Object({ 'x-tenant': Type.String({ minLength: 2 }) }),
      params: Type.Object({ tenantId: Type.Integer() }),
    },
  })

  const ok = await app.inject({ method: 'POST', url: '/tenants/7/whoami', headers: { 'x-tenant': 'acme' }, payload: {} })
  t.equal(ok.statusCode, 200)
  const sid = streamIdOf(ok.body)
  t.equal(ok.body, sseText(sid, [start(sid), progress({ tenant: 'acme', url: '/tenants/7/whoami', feature: 'whoami' }), complete()]))
  t.same(seen, ['onRequest /tenants/7/whoami', 'preHandler {"tenantId":7}'], 'params were coerced by their schema')

  const noHeader = await app.inject({ method: 'POST', url: '/tenants/7/whoami', payload: {} })
  t.equal(noHeader.statusCode, 400)
  t.match(noHeader.json(), { code: 'FST_ERR_VALIDATION', message: /headers/ })

  const badParam = await app.inject({ method: 'POST', url: '/tenants/x/whoami', headers: { 'x-tenant': 'acme' }, payload: {} })
  t.equal(badParam.statusCode, 400)
  t.match(badParam.json(), { code: 'FST_ERR_VALIDATION', message: /params/ })
})

t.test('a hook that replies first stops the command from running', async (t) => {
  const { app, orders } = await ordersApp(t)
  app.streamRoute({
    method: 'POST',
    url: '/orders/process',
    request: ProcessOrdersCommand,
    preHandler: async (_request, reply) => reply.code(403).send({ code: 'FORBIDDEN' }),
  })
  const res = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a'] } })
  t.equal(res.statusCode, 403)
  t.same(res.json(), { code: 'FORBIDDEN' })
  t.equal(orders.handlersBuilt, 0)
})

t.test('eventStream: { namedEvents: true } on the route adds event lines', async (t) => {
  const { app } = await ordersApp(t)
  app.streamRoute({
    method: 'GET', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult, eventStream: { namedEvents: true },
  })
  const res = await app.inject({ method: 'GET', url: '/orders/process?orderIds=a' })
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress(resultOf('a')), complete()], true))
  t.match(res.body, `id: ${sid}:1\nevent: progress\ndata: {"type":"progress","data":{"orderId":"a","status":"processed","processedAt":"${PROCESSED_AT}","itemsCount":1}}\n\n`)
})

t.test('invalid route eventStream settings refuse the route at registration with FST_ERR_CQRS_STREAM_INVALID_OPTION', async (t) => {
  const { app, orders } = await ordersApp(t)
  t.throws(() => app.streamRoute({
    method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, eventStream: { heartbeatMs: -1 },
  }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION' })
  const res = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a'] } })
  t.equal(res.statusCode, 404, 'no route was added')
  t.equal(orders.handlersBuilt, 0)
})

t.test('streamRoute works inside an encapsulated child plugin with a prefix', async (t) => {
  const { app } = await ordersApp(t)
  const hookRuns: string[] = []
  await app.register(async (child) => {
    child.addHook('onRequest', async (request) => { hookRuns.push(request.url) })
    child.streamRoute({ method: 'POST', url: '/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  }, { prefix: '/v1/orders' })
  app.get('/health', async () => ({ ok: true }))

  const res = await app.inject({ method: 'POST', url: '/v1/orders/process', payload: { orderIds: ['a'] } })
  t.equal(res.statusCode, 200)
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress(resultOf('a')), complete()]))
  t.equal((await app.inject({ method: 'POST', url: '/process', payload: { orderIds: ['a'] } })).statusCode, 404)
  await app.inject({ method: 'GET', url: '/health' })
  t.same(hookRuns, ['/v1/orders/process'], "the child's hooks apply to its stream routes only")
})

t.test('the Fastify request is in the stream scope as fastifyRequest', async (t) => {
  const { app } = await appWithExtras(t)
  app.streamRoute({ method: 'GET', url: '/whoami', request: WhoAmICommand, response: WhoAmIResult })
  const res = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-tenant': 'globex' } })
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress({ tenant: 'globex', url: '/whoami' }), complete()]))
})

t.test('a handler error ends the stream with a generic error frame; the details go to the log', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const { app, orders } = await ordersApp(t, {}, { logger: { level: 'error', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
  orders.failOn('bb', new Error('connection to db-1 refused (password=hunter2)'))
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const res = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a', 'bb', 'c'] } })
  t.equal(res.statusCode, 200, 'the stream had already started')
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress(resultOf('a')), error('FST_ERR_CQRS_STREAM_HANDLER_FAILED', handlerFailed.message)]))
  t.notMatch(res.body, /hunter2|db-1|at .*\.ts/, 'no internal message or stack')
  t.same(orders.processed, ['a'], 'nothing after the failure ran')
  t.match(lines, [{ level: 50, err: { message: 'connection to db-1 refused (password=hunter2)', stack: String } }])
})

t.test('an error marked expose: true shows its code and message', async (t) => {
  const { app, orders } = await ordersApp(t)
  orders.failOn('a', Object.assign(new Error('order a is on hold'), { expose: true, code: 'ORDER_ON_HOLD' }))
  orders.failOn('b', Object.assign(new Error('order b is on hold'), { expose: true }))
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand })

  const coded = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a'] } })
  const sid = streamIdOf(coded.body)
  t.equal(coded.body, sseText(sid, [start(sid), error('ORDER_ON_HOLD', 'order a is on hold')]))

  const uncoded = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['b'] } })
  const uid = streamIdOf(uncoded.body)
  t.equal(uncoded.body, sseText(uid, [start(uid), error('FST_ERR_CQRS_STREAM_HANDLER_FAILED', 'order b is on hold')]))
})

t.test("eventHandlerFailure 'fail-stream': a failing event handler ends the stream with FST_ERR_CQRS_STREAM_EVENT_HANDLER_FAILED", async (t) => {
  const { app, orders } = await ordersApp(t, { eventHandlerFailure: 'fail-stream', logger: { error () {}, warn () {} } })
  orders.failEventsOf('bb')
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const res = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a', 'bb', 'c'] } })
  const sid = streamIdOf(res.body)
  const failed = new errors.EventHandlerFailedError('OrderProcessedHandler', 'OrderProcessedEvent')
  t.equal(res.body, sseText(sid, [start(sid), progress(resultOf('a')), error(failed.code, failed.message)]),
    'the item whose events failed never reaches the client')
  t.same(orders.processed, ['a', 'bb'])
  t.same(orders.recorded, ['a'])
})

t.test("the default eventHandlerFailure 'isolate' lets the stream complete", async (t) => {
  const { app, orders } = await ordersApp(t, { logger: { error () {}, warn () {} } })
  orders.failEventsOf('bb')
  app.streamRoute({ method: 'POST', url: '/orders/process', request: ProcessOrdersCommand, response: OrderProcessedResult })
  const res = await app.inject({ method: 'POST', url: '/orders/process', payload: { orderIds: ['a', 'bb', 'c'] } })
  const sid = streamIdOf(res.body)
  t.equal(res.body, sseText(sid, [start(sid), progress(resultOf('a')), progress(resultOf('bb')), progress(resultOf('c')), complete()]))
  t.same(orders.recorded, ['a', 'c'])
})
