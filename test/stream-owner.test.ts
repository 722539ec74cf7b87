// streamOwner: a stream belongs to whoever started it. Every later request
// about it (a reconnect, a two-step claim, a second reader, a cancel) from
// someone else is answered exactly as for an unknown stream, and leaves the
// owner's connection and handler alone. Real sockets: takeovers are what
// is under test.
import diagnosticsChannel from 'node:diagnostics_channel'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import { channelNames, InMemoryStreamStore, type StreamRefusedMessage } from '../src/index.js'
import { redisInstance, keyPrefix } from './fixtures/redis-apps.js'
import { eventually, listen, openSse, startStreamId } from './fixtures/sse-client.js'
import { TicksCommand, ticksApp } from './fixtures/ticks-app.js'

// A session stand-in: the x-user header is the logged-in user; `expired` users have no session any more.
const expired = new Set<string>()
function userOf (request: FastifyRequest): string | undefined {
  const user = request.headers['x-user']
  return typeof user === 'string' && !expired.has(user) ? user : undefined
}

const as = (user: string | undefined, headers: Record<string, string> = {}): Record<string, string> =>
  user === undefined ? headers : { ...headers, 'x-user': user }

async function ownedApp (t: Parameters<typeof ticksApp>[0]) {
  const store = new InMemoryStreamStore()
  const kit = await ticksApp(t, { streamOwner: userOf, streamStore: store })
  kit.app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  kit.app.streamRoute({ method: 'POST', url: '/jobs', request: TicksCommand, twoStep: true })
  const port = await listen(kit.app)
  return { ...kit, store, port }
}

function refusals (t: { teardown (fn: () => unknown): void }): StreamRefusedMessage[] {
  const seen: StreamRefusedMessage[] = []
  const listener = (message: unknown): void => { seen.push(message as StreamRefusedMessage) }
  diagnosticsChannel.subscribe(channelNames.streamRefused, listener)
  t.teardown(() => diagnosticsChannel.unsubscribe(channelNames.streamRefused, listener))
  return seen
}

t.test('a reconnect by someone else gets 204, as for an unknown stream; the owner keeps the stream', async (t) => {
  const { pacer, port, store } = await ownedApp(t)
  const refused = refusals(t)
  pacer.hold()
  pacer.release(1)
  const alice = await openSse(port, '/ticks?count=3', { headers: as('alice') })
  const streamId = await startStreamId(alice)
  await alice.until(() => alice.parser.frames.length === 2, 'one progress frame')

  const unknown = await openSse(port, '/ticks?count=3', { headers: as('bob', { 'last-event-id': `${crypto.randomUUID()}:1` }) })
  for (const [who, headers] of [['bob', as('bob', { 'last-event-id': `${streamId}:1` })], ['no one', { 'last-event-id': `${streamId}:1` }]] as const) {
    const other = await openSse(port, '/ticks?count=3', { headers })
    t.equal(other.status, 204, who)
    t.equal(await other.ended, '', who)
    t.same(other.headers['content-type'], unknown.headers['content-type'], `${who}: the same answer as for an unknown id`)
  }
  t.equal(unknown.status, 204)
  const byQuery = await openSse(port, `/ticks?count=3&lastEventId=${streamId}:1`, { headers: as('bob') })
  t.equal(byQuery.status, 204, 'lastEventId in the query: the same')
  t.same(refused.map((message) => [message.streamId, message.route]), [[streamId, '/ticks'], [streamId, '/ticks'], [streamId, '/ticks']])

  // The stored scope holds a digest of the owner, never the name.
  const stored = await store.read(streamId, -1)
  t.notOk(stored!.scope.includes('alice'))
  t.match(stored!.scope, /^\/ticks\n[\w-]{43}$/)

  pacer.release()
  await alice.ended
  t.equal(alice.parser.frames.length, 5, 'the owner got every frame on its one connection')
  t.equal(pacer.runs, 1)
  t.equal(pacer.aborts, 0, 'nothing was aborted')
})

t.test('the owner resumes; an expired session cannot', async (t) => {
  const { pacer, port } = await ownedApp(t)
  pacer.hold()
  pacer.release(1)
  const first = await openSse(port, '/ticks?count=2', { headers: as('carol') })
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 2, 'one progress frame')
  first.destroy()
  const again = await openSse(port, '/ticks?count=2', { headers: as('carol', { 'last-event-id': `${streamId}:1` }) })
  t.equal(again.status, 200, 'the owner resumes')
  again.destroy()
  expired.add('carol')
  t.teardown(() => expired.delete('carol'))
  await eventually(() => true, 'a tick')
  const late = await openSse(port, '/ticks?count=2', { headers: as('carol', { 'last-event-id': `${streamId}:1` }) })
  t.equal(late.status, 204, 'the owner is asked again on every reconnect: an expired session gets 204')
  t.equal(pacer.runs, 1)
})

t.test('a stream started with no owner: the id is the capability', async (t) => {
  const { pacer, port } = await ownedApp(t)
  pacer.hold()
  pacer.release(1)
  const anonymous = await openSse(port, '/ticks?count=2')
  const streamId = await startStreamId(anonymous)
  await anonymous.until(() => anonymous.parser.frames.length === 2, 'one progress frame')
  const taker = await openSse(port, '/ticks?count=2', { headers: as('dave', { 'last-event-id': `${streamId}:1` }) })
  t.equal(taker.status, 200, 'anyone with the id takes it over, as without streamOwner')
  pacer.release()
  await taker.ended
  t.equal(taker.parser.frames.at(-1)?.data, '{"type":"complete"}')
})

t.test('two-step: only the owner claims or reads the stream url; others get the 404 of an unknown stream', async (t) => {
  const { app, pacer, port } = await ownedApp(t)
  const posted = await app.inject({ method: 'POST', url: '/jobs', payload: { count: 2 }, headers: as('erin') })
  t.equal(posted.statusCode, 202)
  const { url, streamId } = posted.json<{ url: string, streamId: string }>()
  const unknownId = crypto.randomUUID()
  const unknown = await app.inject({ url: `/jobs/${unknownId}`, headers: as('frank') })
  for (const headers of [as('frank'), {}]) {
    const stolen = await app.inject({ url, headers })
    t.equal(stolen.statusCode, 404)
    t.same(stolen.json(), JSON.parse(unknown.body.replace(unknownId, streamId)), 'the body of an unknown stream, but for the id')
  }
  const cancel = await app.inject({ method: 'DELETE', url, headers: as('frank') })
  t.equal(cancel.statusCode, 404, 'nor can another owner cancel it before the claim')
  t.equal(cancel.json().code, 'FST_ERR_CQRS_STREAM_NOT_FOUND')

  pacer.hold()
  pacer.release(1)
  const erin = await openSse(port, url, { headers: as('erin') })
  t.equal(erin.status, 200, 'the owner claims it')
  await erin.until(() => erin.parser.frames.length === 2, 'one progress frame')
  const second = await app.inject({ url, headers: as('frank') })
  t.equal(second.statusCode, 404, 'a second reader who is not the owner')
  const reconnect = await app.inject({ url, headers: as('frank', { 'last-event-id': `${streamId}:1` }) })
  t.equal(reconnect.statusCode, 404, 'a reconnect who is not the owner: the 404 a stream url gives an unknown stream')
  const foreignCancel = await app.inject({ method: 'DELETE', url, headers: as('frank') })
  t.equal(foreignCancel.statusCode, 404, 'a cancel who is not the owner')
  t.equal(pacer.aborts, 0)
  const ownCancel = await app.inject({ method: 'DELETE', url, headers: as('erin') })
  t.equal(ownCancel.statusCode, 204, 'the owner cancels')
  await erin.ended
  t.match(erin.parser.frames.at(-1)?.data, /FST_ERR_CQRS_STREAM_CANCELLED/)
  t.equal(pacer.runs, 1)
})

t.test('streamOwner: validated, per route, and a value that is not a string fails the request', async (t) => {
  const { app } = await ticksApp(t)
  t.throws(() => app.streamRoute({ method: 'GET', url: '/a', request: TicksCommand, streamOwner: 'alice' as never }),
    { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /"streamRoute streamOwner" must be a function/ })
  app.streamRoute({ method: 'GET', url: '/b', request: TicksCommand, resume: true, streamOwner: () => 42 as never })
  const res = await app.inject({ url: '/b?count=1' })
  t.equal(res.statusCode, 500)
  t.match(res.json(), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /"streamOwner" must return a string or undefined, got number/ })
  const broken = ticksApp(t, { streamOwner: 'x' as never })
  await t.rejects(broken, { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION' })
})

t.test('two instances sharing Redis: the owner is checked on the instance that does not run the stream', async (t) => {
  const prefix = keyPrefix(t)
  const plugin = { streamOwner: userOf }
  const a = await redisInstance(t, { keyPrefix: prefix, plugin })
  const b = await redisInstance(t, { keyPrefix: prefix, plugin })
  a.pacer.hold()
  a.pacer.release(1)
  const alice = await openSse(a.port, '/ticks?count=3', { headers: as('alice') })
  const streamId = await startStreamId(alice)
  await alice.until(() => alice.parser.frames.length === 2, 'one progress frame')

  const bob = await openSse(b.port, '/ticks?count=3', { headers: as('bob', { 'last-event-id': `${streamId}:1` }) })
  t.equal(bob.status, 204, 'another owner, on the other instance')
  const bobCancel = await fetch(`http://127.0.0.1:${b.port}/ticks/${streamId}`, { method: 'DELETE', headers: as('bob') })
  t.equal(bobCancel.status, 404)
  t.equal((await bobCancel.json() as { code: string }).code, 'FST_ERR_CQRS_STREAM_NOT_FOUND')

  alice.destroy()
  const back = await openSse(b.port, '/ticks?count=3', { headers: as('alice', { 'last-event-id': `${streamId}:1` }) })
  t.equal(back.status, 200, 'the owner follows it from the other instance')
  a.pacer.release()
  await back.ended
  t.same(back.parser.frames.map((frame) => frame.id), [`${streamId}:2`, `${streamId}:3`, `${streamId}:4`])
  t.equal(a.pacer.runs + b.pacer.runs, 1)
})
