// Two-step commands: POST → 202 { streamId, url }, then GET url streams it.
import { EventSource } from 'eventsource'
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { frames } from './fixtures/sse-app.js'
import { eventually, listen, openSse } from './fixtures/sse-client.js'
import { TicksCommand, ticksApp } from './fixtures/ticks-app.js'
import { PendingStreams } from '../src/plugin/pending-streams.js'
import { RequestScope } from '../src/plugin/stream-owner.js'
import Fastify from 'fastify'
import cqrsStream, { InMemoryStreamStore, type StoredCommand } from '../src/index.js'
import { Who, WhoHandler } from './fixtures/who-request.js'

const tick = (n: number): unknown => ({ type: 'progress', data: { n } })

function startFrame (streamId: string, retry = 1000): string {
  return `id: ${streamId}:0\nretry: ${retry}\ndata: ${JSON.stringify({ type: 'start', streamId, cancelUrl: `/ticks/${streamId}` })}\n\n`
}

t.test('POST answers 202 with the stream url; its GET runs the command once', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, twoStep: true })
  const posted = await app.inject({ method: 'POST', url: '/ticks', payload: { count: 2 } })
  t.equal(posted.statusCode, 202)
  const { streamId, url } = posted.json<{ streamId: string, url: string }>()
  t.match(streamId, /^[0-9a-f-]{36}$/)
  t.equal(url, `/ticks/${streamId}`)
  t.same(Object.keys(posted.json()), ['streamId', 'url'])
  t.equal(pacer.runs, 0, 'nothing runs before the GET')

  const streamed = await app.inject({ url })
  t.equal(streamed.statusCode, 200)
  t.equal(streamed.body, startFrame(streamId) + frames(streamId, [tick(0), tick(1), { type: 'complete' }], 1))
  t.equal(pacer.runs, 1)

  const reconnect = await app.inject({ url, headers: { 'last-event-id': `${streamId}:3` } })
  t.equal(reconnect.statusCode, 204, 'EventSource reconnecting after complete is told to stop')
  const again = await app.inject({ url })
  t.equal(again.body, streamed.body, 'a second reader without an id gets the kept frames from the start')
  t.equal(pacer.runs, 1)
})

t.test('EventSource on the stream url: every frame once, then 204 stops it for good', async (t) => {
  const { app, pacer } = await ticksApp(t, { retryMs: 20 })
  const requests: string[] = []
  app.addHook('onRequest', async (request) => { requests.push(`${request.method} ${String(request.headers['last-event-id'] ?? '-')}`) })
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, twoStep: true })
  const port = await listen(app)
  const { url, streamId } = (await app.inject({ method: 'POST', url: '/ticks', payload: { count: 3 } })).json<{ url: string, streamId: string }>()
  requests.length = 0
  const source = new EventSource(`http://127.0.0.1:${port}${url}`)
  t.teardown(() => source.close())
  const received: string[] = []
  const closed = new Promise<void>((resolve) => {
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) resolve() }
  })
  source.onmessage = (event) => { received.push(`${event.lastEventId} ${event.data}`) }
  await closed
  t.same(received.map((line) => line.split(' ')[0]), [0, 1, 2, 3, 4].map((seq) => `${streamId}:${seq}`), 'each frame once')
  t.same(requests, ['GET -', `GET ${streamId}:4`], 'one reconnect, answered 204')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(requests.length, 2, 'no request after the 204')
  t.equal(pacer.runs, 1)
})

t.test('a dropped GET resumes on the stream url', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, twoStep: { claimTimeoutMs: 5000 }, resume: { windowMs: 5000 } })
  const port = await listen(app)
  pacer.hold()
  pacer.release(1)
  const { url, streamId } = (await app.inject({ method: 'POST', url: '/ticks', payload: { count: 3 } })).json<{ url: string, streamId: string }>()
  const first = await openSse(port, url)
  await first.until(() => first.parser.frames.length === 2, 'start and one tick')
  first.destroy()
  await first.ended.catch(() => {})
  const second = await openSse(port, url, { headers: { 'last-event-id': `${streamId}:1` } })
  pacer.release()
  t.equal(await second.ended, frames(streamId, [tick(1), tick(2), { type: 'complete' }], 2))
  t.equal(pacer.runs, 1)
})

t.test('unknown, unclaimed and cancelled stream urls answer 404; a foreign id 204', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, twoStep: { claimTimeoutMs: 20 } })
  const unknown = await app.inject({ url: '/ticks/nope' })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.headers['content-type'], 'application/json; charset=utf-8')
  t.match(unknown.json(), { statusCode: 404, code: 'FST_ERR_CQRS_STREAM_NOT_FOUND', message: /no stream "nope"/ })

  const expired = (await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 } })).json<{ url: string }>()
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.equal((await app.inject({ url: expired.url })).statusCode, 404, 'not claimed within claimTimeoutMs')

  const cancelled = (await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 } })).json<{ url: string }>()
  t.equal((await app.inject({ method: 'DELETE', url: cancelled.url })).statusCode, 204)
  t.equal((await app.inject({ url: cancelled.url })).statusCode, 404, 'cancelled before its GET')

  const posted = (await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 } })).json<{ url: string, streamId: string }>()
  t.equal((await app.inject({ url: posted.url, headers: { 'last-event-id': 'other:1' } })).statusCode, 204, 'an id of another stream')
  t.equal((await app.inject({ url: posted.url, headers: { 'last-event-id': 'garbage' } })).statusCode, 204, 'a malformed id')
  t.equal((await app.inject({ url: '/ticks/nope', headers: { 'last-event-id': 'nope:3' } })).statusCode, 404, 'a reconnect to an unknown stream')
  t.equal((await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 }, headers: { 'last-event-id': 'x:1' } })).statusCode, 204, 'a POST reconnect never posts again')
  t.equal(pacer.runs, 0)
})

t.test('the POST validates like any command: 400, 413, 415, and nothing is kept', async (t) => {
  const { app } = await ticksApp(t)
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, twoStep: true, bodyLimit: 64 })
  const invalid = await app.inject({ method: 'POST', url: '/ticks', payload: { count: 'many' } })
  t.equal(invalid.statusCode, 400)
  t.equal(invalid.json().code, 'FST_ERR_VALIDATION')
  const big = await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1, pad: 'x'.repeat(100) } })
  t.equal(big.statusCode, 413)
  t.equal(big.json().code, 'FST_ERR_CTP_BODY_TOO_LARGE')
  const text = await app.inject({ method: 'POST', url: '/ticks', payload: 'count=1', headers: { 'content-type': 'text/plain' } })
  t.equal(text.statusCode, 415)
})

t.test('hooks of the route guard its stream urls too', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({
    method: 'POST',
    url: '/ticks',
    request: TicksCommand,
    twoStep: true,
    onRequest: async (request, reply) => {
      if (request.headers.authorization !== 'Bearer ok' && !request.url.includes('token=ok')) return reply.code(401).send({ error: 'no' })
    },
  })
  t.equal((await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 } })).statusCode, 401)
  const { url } = (await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 }, headers: { authorization: 'Bearer ok' } })).json<{ url: string }>()
  t.equal((await app.inject({ url })).statusCode, 401, 'GET of the stream url')
  t.equal((await app.inject({ method: 'DELETE', url })).statusCode, 401, 'DELETE of the stream url')
  t.equal((await app.inject({ url: `${url}?token=ok` })).statusCode, 200)
  await eventually(() => pacer.finished === 1, 'the run')
})

t.test('app.close() drops commands that were never claimed', async (t) => {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, twoStep: true })
  await app.inject({ method: 'POST', url: '/ticks', payload: { count: 1 } })
  await app.close()
  t.equal(pacer.runs, 0)
})

t.test('pending commands: claimed once, under their own scope, all dropped by clear()', async (t) => {
  const released: string[] = []
  const pending = new PendingStreams(new InMemoryStreamStore(), (owner) => { released.push(owner) })
  const request = { log: { warn () {} } } as unknown as FastifyRequest
  const x = new RequestScope(request, '/x', undefined)
  const alice = new RequestScope(request, '/x', 'alice')
  const command = (scope: string): StoredCommand => ({ scope, data: '{"command":{"count":1}}' })
  await pending.add('a', command('/x'), 60_000, undefined, '/x')
  await pending.add('b', command('/x'), 60_000, undefined, '/x')
  await pending.add('c', command(alice.key), 60_000, alice.ownerDigest, '/x')
  t.equal(pending.size, 3)
  t.ok(pending.has('a'))
  t.equal(await pending.take('a', new RequestScope(request, '/other', undefined), request.log), undefined, 'another route cannot claim it')
  t.same(await pending.take('a', x, request.log), command('/x'))
  t.equal(await pending.take('a', x, request.log), undefined, 'claimed once')
  t.notOk(pending.has('a'))
  t.equal(await pending.take('c', new RequestScope(request, '/x', 'bob'), request.log), undefined, 'another owner cannot claim it')
  t.equal(await pending.take('c', x, request.log), undefined, 'nor can a request with no owner')
  pending.clear()
  t.equal(pending.size, 0)
  t.equal(await pending.take('b', x, request.log), undefined, 'cleared')
  t.same(released, [alice.ownerDigest], 'the owner count of c, given back when cleared')
})

t.test('caller: taken from the request that starts the stream (the POST of a two-step one), as JSON; fastifyRequest is the stream\'s own request', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(cqrsStream, { requests: (map) => map.bind(Who, WhoHandler), heartbeatMs: 0 })
  const caller = async (request: FastifyRequest): Promise<unknown> => ({ user: request.headers['x-user'], at: new Date(0) })
  app.streamRoute({ method: 'POST', url: '/who', request: Who, twoStep: true, caller })
  app.streamRoute({ method: 'GET', url: '/who-now', request: Who, caller })
  app.streamRoute({ method: 'GET', url: '/nobody', request: Who })
  const progress = (body: string): unknown => JSON.parse(/data: (\{"type":"progress".*)\n/.exec(body)![1]!).data

  const { url } = (await app.inject({ method: 'POST', url: '/who', headers: { 'x-user': 'alice' }, payload: { label: 'x' } })).json<{ url: string }>()
  const streamed = await app.inject({ url, headers: { 'x-user': 'mallory' } })
  t.same(progress(streamed.body), { label: 'x', caller: { user: 'alice', at: '1970-01-01T00:00:00.000Z' }, dated: false, method: 'GET', user: 'mallory' },
    'the POST\'s caller, through JSON as a shared store keeps it (a Date becomes its string); the GET\'s request')
  t.same(progress((await app.inject({ url: '/who-now?label=x', headers: { 'x-user': 'bob' } })).body),
    { label: 'x', caller: { user: 'bob', at: '1970-01-01T00:00:00.000Z' }, dated: true, method: 'GET', user: 'bob' }, 'a one-step route: the value itself')
  t.same(progress((await app.inject({ url: '/nobody?label=x' })).body), { label: 'x', dated: false, method: 'GET' }, 'without the option: undefined')
  t.throws(() => app.streamRoute({ method: 'GET', url: '/bad', request: Who, caller: 'alice' as never }), { code: 'FST_ERR_CQRS_STREAM_INVALID_ROUTE', message: /"caller"/ })
})
