// limits: what one instance takes. A refused request is a 503 or 429 with
// Retry-After and never runs its command; every count is given back on
// every way out, which the last test checks over thousands of streams.
import { asValue, createContainer } from 'awilix'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import t from 'tap'
import cqrsStream, { type FastifyCqrsStreamOptions } from '../src/index.js'
import { PadsCommand, PadsHandler } from './fixtures/redis-apps.js'
import { eventually, listen, openSse, startStreamId, type SseClient } from './fixtures/sse-client.js'
import { Pacer, TicksCommand, ticksApp } from './fixtures/ticks-app.js'

const userOf = (request: FastifyRequest): string | undefined => {
  const user = request.headers['x-user']
  return typeof user === 'string' ? user : undefined
}

t.test('maxOpenStreams: a 503 with Retry-After, before the command runs; a slot frees when a stream ends', async (t) => {
  const { app, pacer } = await ticksApp(t, { limits: { maxOpenStreams: 2, retryAfterSeconds: 7 } })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  app.get('/raw', (_request, reply) => reply.eventStream(async function * () { yield 1 }))
  const port = await listen(app)
  pacer.hold()
  const held: SseClient[] = []
  for (let i = 0; i < 2; i++) held.push(await openSse(port, '/ticks?count=1'))
  await eventually(() => pacer.runs === 2, 'two commands running')
  const refused = await app.inject({ url: '/ticks?count=1' })
  t.equal(refused.statusCode, 503)
  t.equal(refused.headers['retry-after'], '7')
  t.match(refused.json(), { statusCode: 503, code: 'FST_ERR_CQRS_STREAM_OVERLOADED', message: /runs as many streams as it takes/ })
  const raw = await app.inject({ url: '/raw' })
  t.equal(raw.statusCode, 503, 'reply.eventStream() counts too')
  t.equal(pacer.runs, 2, 'the refused commands never ran')
  t.same(app.streamStats(), { openStreams: 2, pendingStreams: 0, followers: 0, owners: 0 })
  pacer.release()
  await Promise.all(held.map((client) => client.ended))
  await eventually(() => app.streamStats().openStreams === 0, 'the streams to end')
  const again = await app.inject({ url: '/ticks?count=1' })
  t.equal(again.statusCode, 200)
})

t.test('maxStreamsPerOwner: a 429 for that owner only; two-step commands count while they wait', async (t) => {
  const { app, pacer } = await ticksApp(t, { streamOwner: userOf, limits: { maxStreamsPerOwner: 2 } })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  app.streamRoute({ method: 'POST', url: '/jobs', request: TicksCommand, twoStep: true })
  const port = await listen(app)
  pacer.hold()
  const alice = await openSse(port, '/ticks?count=1', { headers: { 'x-user': 'alice' } })
  await startStreamId(alice)
  const posted = await app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 }, headers: { 'x-user': 'alice' } })
  t.equal(posted.statusCode, 202)
  const third = await app.inject({ url: '/ticks?count=1', headers: { 'x-user': 'alice' } })
  t.equal(third.statusCode, 429)
  t.equal(third.headers['retry-after'], '5')
  t.match(third.json(), { code: 'FST_ERR_CQRS_STREAM_TOO_MANY_STREAMS', message: /you have 2 streams open already/ })
  const post = await app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 }, headers: { 'x-user': 'alice' } })
  t.equal(post.statusCode, 429, 'a POST too')
  const bob = await app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 }, headers: { 'x-user': 'bob' } })
  t.equal(bob.statusCode, 202, 'another owner is not limited by alice')
  t.same(app.streamStats(), { openStreams: 1, pendingStreams: 2, followers: 0, owners: 2 })
  // Alice's pending command is cancelled: her count goes down, a new stream is taken.
  const cancel = await app.inject({ method: 'DELETE', url: posted.json<{ url: string }>().url, headers: { 'x-user': 'alice' } })
  t.equal(cancel.statusCode, 204)
  const fourth = await app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 }, headers: { 'x-user': 'alice' } })
  t.equal(fourth.statusCode, 202)
  t.equal(pacer.runs, 1, 'only the first ran')
})

t.test('maxPendingStreams: a 503 past it; a claim frees a place', async (t) => {
  const { app } = await ticksApp(t, { limits: { maxPendingStreams: 2 } })
  app.streamRoute({ method: 'POST', url: '/jobs', request: TicksCommand, twoStep: true })
  const urls: string[] = []
  for (let i = 0; i < 2; i++) urls.push((await app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })).json<{ url: string }>().url)
  const refused = await app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })
  t.equal(refused.statusCode, 503)
  t.match(refused.json(), { code: 'FST_ERR_CQRS_STREAM_OVERLOADED', message: /two-step commands waiting for their GET/ })
  const claimed = await app.inject({ url: urls[0]! })
  t.equal(claimed.statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })).statusCode, 202)
})

/** Resolves once the app's server has no open socket left. */
async function noConnections (app: FastifyInstance): Promise<void> {
  let open = -1
  await eventually(() => {
    app.server.getConnections((_error, count) => { open = count })
    return open === 0
  }, 'the server to see the client leave')
}

async function padsApp (t: Parameters<typeof ticksApp>[0], options: FastifyCqrsStreamOptions) {
  const pacer = new Pacer()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(cqrsStream, {
    container: createContainer({ strict: true }).register({ pacer: asValue(pacer) }),
    requests: (map) => map.bind(PadsCommand, PadsHandler),
    heartbeatMs: 0,
    ...options,
  })
  app.streamRoute({ method: 'GET', url: '/pads', request: PadsCommand, resume: { windowMs: 60_000 } })
  return { app, pacer, port: await listen(app) }
}

t.test('maxBufferedBytes: the kept frames are bounded by size; a client away past it has its stream aborted', async (t) => {
  const { app, pacer, port } = await padsApp(t, { limits: { maxBufferedBytes: 10_000 } })
  pacer.hold()
  pacer.release(1)
  const client = await openSse(port, '/pads?count=100&size=1000')
  const streamId = await startStreamId(client)
  await client.until(() => client.parser.frames.length === 2, 'the first frame')
  client.destroy()
  await client.ended.catch(() => {})
  await noConnections(app)
  // About 1 KB per frame: the 10th frame sent while away passes 10,000 characters.
  pacer.release(20)
  await eventually(() => pacer.yielded >= 11 && app.streamStats().openStreams === 0, 'the stream to be aborted')
  t.ok(pacer.yielded < 21, `aborted at frame ${pacer.yielded}, long before its 60 s window`)
  const late = await openSse(port, '/pads?count=100&size=1000', { headers: { 'last-event-id': `${streamId}:1` } })
  t.equal(late.status, 204, 'nothing to resume')
})

t.test('maxBufferedBytes: a connected stream keeps only the newest frames that fit', async (t) => {
  const { app, pacer, port } = await padsApp(t, { limits: { maxBufferedBytes: 10_000 } })
  pacer.hold()
  pacer.release(30)
  const client = await openSse(port, '/pads?count=40&size=1000')
  const streamId = await startStreamId(client)
  await client.until(() => client.parser.frames.length === 31, '30 frames')
  client.destroy()
  await client.ended.catch(() => {})
  await noConnections(app)
  // The client missed nothing, yet asks for frame 5 on: those are gone, 204.
  const early = await openSse(port, '/pads?count=40&size=1000', { headers: { 'last-event-id': `${streamId}:5` } })
  t.equal(early.status, 204, 'older frames were dropped by size')
  const recent = await openSse(port, '/pads?count=40&size=1000', { headers: { 'last-event-id': `${streamId}:28` } })
  t.equal(recent.status, 200, 'recent ones are kept')
  pacer.release()
  await recent.ended
  t.equal(recent.parser.frames.length, 40 + 2 - 29, 'frames 29… and complete')
  t.equal(pacer.runs, 1)
})

t.test('limits are validated', async (t) => {
  for (const limits of [{ maxOpenStreams: 0 }, { maxStreamsPerOwner: 1.5 }, { maxBufferedBytes: -1 }, { retryAfterSeconds: '5' }, 'many']) {
    await t.rejects(ticksApp(t, { limits: limits as never }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION' }, JSON.stringify(limits))
  }
  const { app } = await ticksApp(t, { limits: { maxOpenStreams: Infinity } })
  t.same(app.streamStats(), { openStreams: 0, pendingStreams: 0, followers: 0, owners: 0 })
})
