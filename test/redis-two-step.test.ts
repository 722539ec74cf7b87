// Two-step commands behind a balancer without sticky sessions: POSTed to
// one instance, claimed by a GET (or cancelled by a DELETE) on another,
// through the real Redis. The command runs once, on the claiming instance.
import { asValue, createContainer } from 'awilix'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import t from 'tap'
import cqrsStream, { type StreamSignal } from '../src/index.js'
import { Who, WhoHandler } from './fixtures/who-request.js'
import { RedisStreamStore } from '../src/redis/index.js'
import { frames } from './fixtures/sse-app.js'
import { eventually, listen, openSse } from './fixtures/sse-client.js'
import { keyPrefix, privateRedis, REDIS_URL, redisInstance } from './fixtures/redis-apps.js'
import type { Teardown } from './fixtures/app-orders.js'

const tick = (n: number): unknown => ({ type: 'progress', data: { n } })
const COMPLETE = { type: 'complete' }

function startFrame (streamId: string): string {
  return `id: ${streamId}:0\nretry: 1000\ndata: ${JSON.stringify({ type: 'start', streamId, cancelUrl: `/jobs/${streamId}` })}\n\n`
}

interface Accepted { streamId: string, url: string }

t.test('POSTed to A, claimed on B: it runs once, on B, and A stops counting it', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix })
  const b = await redisInstance(t, { keyPrefix: prefix })
  const posted = await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 2 } })
  t.equal(posted.statusCode, 202)
  const { streamId, url } = posted.json<Accepted>()
  t.equal(a.app.streamStats().pendingStreams, 1, 'counted on A while it waits')

  const streamed = await b.app.inject({ url })
  t.equal(streamed.statusCode, 200)
  t.equal(streamed.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(streamed.body, startFrame(streamId) + frames(streamId, [tick(0), tick(1), COMPLETE], 1))
  t.same({ a: a.pacer.runs, b: b.pacer.runs }, { a: 0, b: 1 }, 'ran once, where it was claimed')
  await eventually(() => a.app.streamStats().pendingStreams === 0, 'A told by the taken signal')

  const again = await a.app.inject({ url })
  t.equal(again.statusCode, 200)
  t.equal(again.body, streamed.body, 'a second reader on A replays it from Redis; nothing runs again')
  const reconnect = await a.app.inject({ url, headers: { 'last-event-id': `${streamId}:3` } })
  t.equal(reconnect.statusCode, 204)
  t.same({ a: a.pacer.runs, b: b.pacer.runs }, { a: 0, b: 1 })
  t.same([a.warnings, b.warnings], [[], []], 'nothing logged')
})

t.test('20 GETs of one posted command on two instances at once: one run, every reader gets every frame', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix })
  const b = await redisInstance(t, { keyPrefix: prefix })
  a.pacer.hold()
  b.pacer.hold()
  const { streamId, url } = (await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 3 } })).json<Accepted>()
  const opened = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => openSse((i % 2 === 0 ? a : b).port, url)))
  await eventually(() => a.pacer.runs + b.pacer.runs === 1, 'one run')
  a.pacer.release()
  b.pacer.release()
  const readers = opened.flatMap((result) => result.status === 'fulfilled' ? [result.value] : [])
  t.same(readers.filter((reader) => reader.status !== 200), [], 'no 404: a reader that lost the claim follows the run')
  // On the running instance, a newer reader takes the stream from the one before (as on one instance): the
  // earlier is cut, before or after its headers. Every other reader reads to the end.
  const bodies = await Promise.all(readers.map((reader) => reader.ended.catch(() => undefined)))
  const whole = startFrame(streamId) + frames(streamId, [tick(0), tick(1), tick(2), COMPLETE], 1)
  const complete = bodies.filter((body) => body !== undefined)
  t.ok(complete.length >= 10, `${complete.length} of 20 readers read to the end`)
  for (const body of complete) t.equal(body, whole)
  t.equal(a.pacer.runs + b.pacer.runs, 1, 'still one run')
  await eventually(() => a.app.streamStats().pendingStreams === 0, 'nothing pending on A')
})

t.test('unclaimed, it expires after claimTimeoutMs on every instance: 404, nothing runs, A stops counting it', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix, twoStep: { claimTimeoutMs: 200 } })
  const b = await redisInstance(t, { keyPrefix: prefix, twoStep: { claimTimeoutMs: 200 } })
  const { streamId, url } = (await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })).json<Accepted>()
  t.ok(await b.store.redis.pttl(`${prefix}{${streamId}}:command`) > 0, 'kept in Redis, with a TTL')
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal(a.app.streamStats().pendingStreams, 0)
  const late = await b.app.inject({ url })
  t.equal(late.statusCode, 404)
  t.equal(late.json().code, 'FST_ERR_CQRS_STREAM_NOT_FOUND')
  t.equal((await a.app.inject({ url })).statusCode, 404)
  t.same({ a: a.pacer.runs, b: b.pacer.runs }, { a: 0, b: 0 })
})

t.test('cancelled on B before its GET: 204, then 404 everywhere, nothing runs, A stops counting it', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix })
  const b = await redisInstance(t, { keyPrefix: prefix })
  const { url } = (await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })).json<Accepted>()
  const cancel = await b.app.inject({ method: 'DELETE', url })
  t.equal(cancel.statusCode, 204)
  await eventually(() => a.app.streamStats().pendingStreams === 0, 'A told')
  for (const instance of [a, b]) {
    const get = await instance.app.inject({ url })
    t.equal(get.statusCode, 404)
    t.equal(get.json().code, 'FST_ERR_CQRS_STREAM_NOT_FOUND')
  }
  t.equal((await a.app.inject({ method: 'DELETE', url })).statusCode, 404, 'cancelled once')
  t.same({ a: a.pacer.runs, b: b.pacer.runs }, { a: 0, b: 0 })
})

t.test('owners across instances: another owner\'s GET on B neither claims nor spoils it; the owner\'s does, and the count moves with it', async (t) => {
  const prefix = keyPrefix(t)
  const plugin = { streamOwner: (request: FastifyRequest) => request.headers['x-user'] as string | undefined }
  const a = await redisInstance(t, { keyPrefix: prefix, plugin })
  const b = await redisInstance(t, { keyPrefix: prefix, plugin })
  const alice = { 'x-user': 'alice' }
  const { streamId, url } = (await a.app.inject({ method: 'POST', url: '/jobs', headers: alice, payload: { count: 1 } })).json<Accepted>()
  t.equal(a.app.streamStats().owners, 1)
  t.equal((await b.app.inject({ url, headers: { 'x-user': 'bob' } })).statusCode, 404, 'bob')
  t.equal((await b.app.inject({ url })).statusCode, 404, 'no owner')
  t.equal((await b.app.inject({ method: 'DELETE', url, headers: { 'x-user': 'bob' } })).statusCode, 404, 'bob cannot cancel it')
  t.match(b.warnings, [/a request about a stream of another owner/], 'the refusal is logged')
  b.pacer.hold()
  const claim = await openSse(b.port, url, { headers: alice })
  t.equal(claim.status, 200)
  await eventually(() => b.app.streamStats().owners === 1 && a.app.streamStats().owners === 0, 'the owner count moved from A to B')
  b.pacer.release()
  t.equal(await claim.ended, startFrame(streamId) + frames(streamId, [tick(0), COMPLETE], 1))
  await eventually(() => b.app.streamStats().owners === 0, 'released when the run ended')
  t.same({ a: a.pacer.runs, b: b.pacer.runs }, { a: 0, b: 1 })
})

t.test('a claim on an instance that runs maxOpenStreams is refused with 503 and stays claimable elsewhere', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix })
  const b = await redisInstance(t, { keyPrefix: prefix, plugin: { limits: { maxOpenStreams: 1 } } })
  b.pacer.hold()
  const busy = await openSse(b.port, '/ticks?count=1')
  t.equal(busy.status, 200)
  const { streamId, url } = (await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })).json<Accepted>()
  const refused = await b.app.inject({ url })
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'FST_ERR_CQRS_STREAM_OVERLOADED')
  t.ok(refused.headers['retry-after'])
  const claimed = await a.app.inject({ url })
  t.equal(claimed.body, startFrame(streamId) + frames(streamId, [tick(0), COMPLETE], 1))
  b.pacer.release()
  await busy.ended
})

async function whoInstance (t: Teardown, prefix: string): Promise<{ port: number, app: FastifyInstance }> {
  const store = new RedisStreamStore({ redis: REDIS_URL, keyPrefix: prefix })
  const app = Fastify()
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  await app.register(cqrsStream, { container: createContainer({ strict: true }).register({ unused: asValue(0) }), requests: (map) => map.bind(Who, WhoHandler), heartbeatMs: 0, streamStore: store })
  app.streamRoute({
    method: 'POST',
    url: '/who',
    request: Who,
    twoStep: true,
    caller: (request) => ({ user: request.headers['x-user'], roles: ['admin'] }),
  })
  return { port: await listen(app), app }
}

t.test('caller travels with the command: the handler on B sees the POST\'s caller and the GET as fastifyRequest', async (t) => {
  const prefix = keyPrefix(t)
  const a = await whoInstance(t, prefix)
  const b = await whoInstance(t, prefix)
  const { streamId, url } = (await a.app.inject({ method: 'POST', url: '/who', headers: { 'x-user': 'alice' }, payload: { label: 'é 😀' } })).json<Accepted>()
  const streamed = await b.app.inject({ url, headers: { 'x-user': 'viewer' } })
  t.equal(streamed.body,
    `id: ${streamId}:0\nretry: 1000\ndata: ${JSON.stringify({ type: 'start', streamId, cancelUrl: `/who/${streamId}` })}\n\n` +
    frames(streamId, [{ type: 'progress', data: { label: 'é 😀', dated: false, method: 'GET', caller: { user: 'alice', roles: ['admin'] }, user: 'viewer' } }, COMPLETE], 1))
})

t.test('a command kept in Redis that no longer matches the schema (a rolling deploy) fails its GET with 400, not a run', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix })
  const { streamId, url } = (await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })).json<Accepted>()
  await a.store.redis.hset(`${prefix}{${streamId}}:command`, 'data', JSON.stringify({ command: { count: 'many' } }))
  const get = await a.app.inject({ url })
  t.equal(get.statusCode, 400)
  t.equal(get.json().code, 'FST_ERR_CQRS_STREAM_INVALID_MESSAGE')
  t.equal(a.pacer.runs, 0)
  t.equal((await a.app.inject({ url })).statusCode, 404, 'gone: its stream does not read as running')
})

t.test('Redis down: a POST is refused with the store\'s 503 and not counted; when it is back, two-step works again', async (t) => {
  const server = await privateRedis(t)
  const a = await redisInstance(t, { keyPrefix: 'down:', store: { redis: server.url, logger: { warn () {} } } })
  await server.stop()
  const refused = await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })
  t.equal(refused.statusCode, 503)
  t.equal(refused.json().code, 'FST_ERR_CQRS_STREAM_STORE_UNAVAILABLE')
  t.same(a.app.streamStats(), { openStreams: 0, pendingStreams: 0, followers: 0, owners: 0 })
  await server.start()
  let status = 0
  for (let tries = 0; tries < 200 && status !== 202; tries++) {
    status = (await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })).statusCode
    if (status !== 202) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 202, 'accepted again once Redis is back')
  t.equal(a.app.streamStats().pendingStreams, 1)
})

t.test('a store command that fails (a connection dropped mid-command) answers 503 STORE_UNAVAILABLE, for the POST and for the GET', async (t) => {
  const prefix = keyPrefix(t)
  class Dropping extends RedisStreamStore {
    failing = false
    override putCommand (...args: Parameters<RedisStreamStore['putCommand']>): Promise<void> {
      return this.failing ? Promise.reject(new Error('Connection is closed.')) : super.putCommand(...args)
    }

    override takeCommand (...args: Parameters<RedisStreamStore['takeCommand']>): ReturnType<RedisStreamStore['takeCommand']> {
      return this.failing ? Promise.reject(new Error('Connection is closed.')) : super.takeCommand(...args)
    }
  }
  const a = await redisInstance(t, { keyPrefix: prefix, makeStore: (options) => new Dropping(options) })
  const store = a.store as Dropping
  const { url } = (await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })).json<Accepted>()
  store.failing = true
  for (const answer of [await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } }), await a.app.inject({ url })]) {
    t.equal(answer.statusCode, 503)
    t.same(answer.json(), {
      statusCode: 503,
      code: 'FST_ERR_CQRS_STREAM_STORE_UNAVAILABLE',
      error: 'Service Unavailable',
      message: 'fastify-cqrs-stream: the stream store is unavailable (Error: Connection is closed.). Streams go on without resume until it is back; check the Redis connection.',
    })
  }
  t.equal(a.app.streamStats().pendingStreams, 1, 'the refused POST is not counted; the first still is')
  store.failing = false
  t.equal((await a.app.inject({ url })).statusCode, 200, 'the first is still there to claim')
})

t.test('a taken signal that cannot be sent is logged; the posting instance counts the command until it expires', async (t) => {
  const prefix = keyPrefix(t)
  class NoTakenSignal extends RedisStreamStore {
    override signal (message: StreamSignal): Promise<void> {
      return message.type === 'taken' ? Promise.reject(new Error('publish failed')) : super.signal(message)
    }
  }
  const a = await redisInstance(t, { keyPrefix: prefix, twoStep: { claimTimeoutMs: 300 } })
  const b = await redisInstance(t, { keyPrefix: prefix, twoStep: { claimTimeoutMs: 300 }, makeStore: (options) => new NoTakenSignal(options) })
  const { url } = (await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })).json<Accepted>()
  t.equal((await b.app.inject({ url })).statusCode, 200)
  t.match(b.warnings, [/was not told it was taken; it counts it until it expires: publish failed/])
  t.equal(a.app.streamStats().pendingStreams, 1, 'still counted on A')
  await eventually(() => a.app.streamStats().pendingStreams === 0, 'until it expires')
})
