// Two instances sharing the real Redis: a client that drops from one and
// reconnects to the other resumes there, while the first runs the command.
import t from 'tap'
import { frames } from './fixtures/sse-app.js'
import { eventually, openSse, startStreamId, within, type SseClient } from './fixtures/sse-client.js'
import { keyPrefix, privateRedis, redisInstance, type RedisInstance } from './fixtures/redis-apps.js'
import { RedisStreamStore } from '../src/redis/index.js'

const tick = (n: number): unknown => ({ type: 'progress', data: { n } })
const COMPLETE = { type: 'complete' }

/**
 * Frames reach the client and Redis concurrently: a test that reconnects at
 * once waits for Redis to hold `seq` (0: the stream is opened there), as a
 * real reconnect's delay does.
 */
async function inRedis (instance: RedisInstance, streamId: string, seq: number): Promise<void> {
  await within((async () => {
    for (;;) {
      const stored = await instance.store.read(streamId, seq - 1)
      if (stored !== undefined && (seq === 0 || stored.frames[0]?.seq === seq)) return
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })(), `frame ${seq} in Redis`)
}

async function dropped (client: SseClient): Promise<void> {
  client.destroy()
  await client.ended.catch(() => {})
}

/**
 * A stream started on `a` whose handler is held after `ticks` ticks, and
 * whose client then left once it had them; resolves with the stream id once
 * Redis holds them.
 */
async function droppedOn (a: RedisInstance, url: string, ticks: number): Promise<string> {
  a.pacer.hold()
  a.pacer.release(ticks)
  const first = await openSse(a.port, url)
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === ticks + 1, `the start frame and ${ticks} tick(s)`)
  await dropped(first)
  await inRedis(a, streamId, ticks)
  return streamId
}

t.test('a client drops from A, reconnects to B with Last-Event-ID and gets every remaining frame once; the handler runs once, on A', async (t) => {
  const prefix = keyPrefix(t)
  // A short window: the stream outlives it only because B renews A's lease.
  const a = await redisInstance(t, { keyPrefix: prefix, resume: { windowMs: 600 } })
  const b = await redisInstance(t, { keyPrefix: prefix, resume: { windowMs: 600 } })
  const streamId = await droppedOn(a, '/ticks?count=10', 3)
  a.pacer.release(2)
  await eventually(() => a.pacer.yielded === 5, 'two ticks produced while nobody listens')
  await inRedis(a, streamId, 5)

  const second = await openSse(b.port, '/ticks?count=10', { headers: { 'last-event-id': `${streamId}:3` } })
  t.equal(second.status, 200)
  t.equal(second.headers['content-type'], 'text/event-stream; charset=utf-8')
  await second.until(() => second.parser.frames.length === 2, 'the two missed ticks, from Redis')
  // Longer than A's window: B's lease keeps the stream alive.
  await new Promise((resolve) => setTimeout(resolve, 1400))
  a.pacer.release(1)
  await second.until(() => second.parser.frames.length === 3, 'a live tick, through Redis')
  a.pacer.release()
  const body = await second.ended
  t.equal(body, frames(streamId, [tick(3), tick(4), tick(5), tick(6), tick(7), tick(8), tick(9), COMPLETE], 4), 'no frame repeated or skipped')
  t.same({ runs: a.pacer.runs, aborts: a.pacer.aborts, finished: a.pacer.finished }, { runs: 1, aborts: 0, finished: 1 }, 'ran once on A, to its end')
  t.equal(b.pacer.runs, 0, 'never ran on B')

  const late = await b.app.inject({ url: '/ticks?count=10', headers: { 'last-event-id': `${streamId}:9` } })
  t.equal(late.statusCode, 200)
  t.equal(late.body, frames(streamId, [tick(9), COMPLETE], 10), 'an ended stream is replayed from Redis on B')
  t.same([a.warnings, b.warnings], [[], []], 'nothing logged')
})

t.test('two-step: a second reader of the stream url on B takes over the stream A runs, from its start frame', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix })
  const b = await redisInstance(t, { keyPrefix: prefix })
  a.pacer.hold()
  a.pacer.release(1)
  const accepted = await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 3 } })
  t.equal(accepted.statusCode, 202)
  const { streamId, url } = accepted.json() as { streamId: string, url: string }
  const first = await openSse(a.port, url)
  await first.until(() => first.parser.frames.length === 2, 'start and a tick on A')
  await inRedis(a, streamId, 1)
  const second = await openSse(b.port, url)
  t.equal(second.status, 200)
  await second.until(() => second.parser.frames.length === 2, 'start and a tick on B')
  // As on one instance, the newer connection takes the stream: A's reader is cut (EventSource would reconnect).
  await t.rejects(first.ended, /cut/)
  a.pacer.release()
  const body = await second.ended
  t.equal(body, first.body() + frames(streamId, [tick(1), tick(2), COMPLETE], 2), 'every frame from the start frame, once')
  t.same({ a: a.pacer.runs, b: b.pacer.runs }, { a: 1, b: 0 }, 'one run, on A')
})

t.test('a DELETE sent to B cancels the stream A runs', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix })
  const b = await redisInstance(t, { keyPrefix: prefix })
  a.pacer.hold()
  a.pacer.release(1)
  const client = await openSse(a.port, '/ticks?count=10')
  const streamId = await startStreamId(client)
  await client.until(() => client.parser.frames.length === 2, 'start and a tick')
  await inRedis(a, streamId, 1)
  const cancel = await b.app.inject({ method: 'DELETE', url: `/ticks/${streamId}` })
  t.equal(cancel.statusCode, 204)
  const body = await client.ended
  const last = JSON.parse(client.parser.frames.at(-1)!.data)
  t.equal(last.type, 'error')
  t.equal(last.error.code, 'FST_ERR_CQRS_STREAM_CANCELLED')
  t.match(body, /"type":"error"/)
  await eventually(() => a.pacer.aborts === 1, 'the handler on A aborted')
  const unknown = await b.app.inject({ method: 'DELETE', url: '/ticks/no-such-stream' })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'FST_ERR_CQRS_STREAM_NOT_FOUND')
})

t.test('a follower on B that leaves: A waits its window, then aborts the handler', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix, resume: { windowMs: 600 } })
  const b = await redisInstance(t, { keyPrefix: prefix, resume: { windowMs: 600 } })
  const streamId = await droppedOn(a, '/ticks?count=10', 1)
  const second = await openSse(b.port, '/ticks?count=10', { headers: { 'last-event-id': `${streamId}:1` } })
  t.equal(second.status, 200)
  // Twice the window: B's lease keeps it alive.
  await new Promise((resolve) => setTimeout(resolve, 1300))
  t.equal(a.pacer.aborts, 0, 'alive while B follows')
  await dropped(second)
  await eventually(() => a.pacer.aborts === 1, 'aborted once the window after the leave passed')
  const again = await b.app.inject({ url: '/ticks?count=10', headers: { 'last-event-id': `${streamId}:1` } })
  t.equal(again.statusCode, 204, 'an aborted stream cannot be resumed anywhere')
})

t.test('backpressure crosses instances: a follower that does not read holds the handler on A', async (t) => {
  const prefix = keyPrefix(t)
  const resume = { maxBufferedFrames: 16 }
  const a = await redisInstance(t, { keyPrefix: prefix, resume })
  const b = await redisInstance(t, { keyPrefix: prefix, resume })
  const count = 2000
  // 10 KB frames: 20 MB in all, more than loopback socket buffers hold.
  const url = `/pads?count=${count}&size=10000`
  const streamId = await droppedOn(a, url, 0)
  const second = await openSse(b.port, url, { headers: { 'last-event-id': `${streamId}:0` } })
  // A few frames through B first: by then A has B's follow signal (until
  // then A counts frames as produced while the client is away).
  a.pacer.release(4)
  await second.until(() => second.parser.frames.length === 4, 'four frames through B')
  second.pause()
  a.pacer.release()
  // Held: no new frame for 300 ms.
  let held = -1
  for (let tries = 0; held !== a.pacer.yielded && tries < 30; tries++) {
    held = a.pacer.yielded
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  t.ok(held < count, `the handler is held (${held} of ${count} frames) while the client does not read`)
  second.resume()
  const body = await second.ended
  const pad = 'x'.repeat(10000)
  const items = Array.from({ length: count }, (_, n) => ({ type: 'progress', data: { n, pad } }))
  t.equal(body, frames(streamId, [...items, COMPLETE], 1), 'every frame once, in order, none dropped from Redis')
  t.same({ runs: a.pacer.runs, yielded: a.pacer.yielded }, { runs: 1, yielded: count })
})

t.test('B closing drops its followers without a last frame: the client resumes on A', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix })
  const b = await redisInstance(t, { keyPrefix: prefix })
  const streamId = await droppedOn(a, '/ticks?count=3', 1)
  const second = await openSse(b.port, '/ticks?count=3', { headers: { 'last-event-id': `${streamId}:1` } })
  t.equal(second.status, 200)
  await b.app.close()
  await t.rejects(second.ended, /cut/, 'cut, not ended: EventSource reconnects')
  t.equal(second.body(), '', 'no shutdown frame: the stream goes on elsewhere')
  const third = await openSse(a.port, '/ticks?count=3', { headers: { 'last-event-id': `${streamId}:1` } })
  a.pacer.release()
  t.equal(await third.ended, frames(streamId, [tick(1), tick(2), COMPLETE], 2))
  t.same({ runs: a.pacer.runs, aborts: a.pacer.aborts }, { runs: 1, aborts: 0 })
})

t.test('a follower that goes quiet without leaving (its instance died): its lease lapses, then the window runs', async (t) => {
  const prefix = keyPrefix(t)
  const a = await redisInstance(t, { keyPrefix: prefix, resume: { windowMs: 600 } })
  const streamId = await droppedOn(a, '/ticks?count=10', 1)
  // What a follower on another instance publishes first; then it dies.
  await a.store.redis.publish(`${prefix}signals`, JSON.stringify({ type: 'follow', streamId, follower: 'ghost', seq: 1 }))
  // Past the window that started at the drop, within the lease and the window after it.
  await new Promise((resolve) => setTimeout(resolve, 900))
  t.equal(a.pacer.aborts, 0, 'the lease outlives the window after the drop')
  await eventually(() => a.pacer.aborts === 1, 'aborted after the lease and then the window')
})

t.test('a follower drops its client at a gap in the stored frames, and a reconnect before the kept frames gets 204', async (t) => {
  const prefix = keyPrefix(t)
  const b = await redisInstance(t, { keyPrefix: prefix })
  // Written as an owning instance would, with a frame missing.
  const frame = (seq: number): { seq: number, text: string } => ({ seq, text: `id: s:${seq}\ndata: {"n":${seq}}\n\n` })
  await b.store.open('s', { scope: '/ticks', maxFrames: 2 })
  await b.store.append('s', frame(1))
  const follower = await openSse(b.port, '/ticks?count=1', { headers: { 'last-event-id': 's:1' } })
  t.equal(follower.status, 200, 'followed: nothing missed yet')
  await b.store.append('s', frame(2))
  await follower.until(() => follower.parser.frames.length === 1, 'frame 2')
  await b.store.append('s', frame(4))
  await t.rejects(follower.ended, /cut/, 'cut at the gap, without a last frame')
  t.equal(follower.body(), frame(2).text)
  await b.store.append('s', frame(5))
  const before = await b.app.inject({ url: '/ticks?count=1', headers: { 'last-event-id': 's:1' } })
  t.equal(before.statusCode, 204, 'frame 2 is no longer kept')

  // The owner aborts a stream (its client stayed away too long): followers are cut, and a reconnect gets 204.
  await b.store.open('aborted', { scope: '/ticks', maxFrames: 10 })
  await b.store.append('aborted', frame(1))
  const cut = await openSse(b.port, '/ticks?count=1', { headers: { 'last-event-id': 'aborted:1' } })
  await new Promise((resolve) => setTimeout(resolve, 50))
  await b.store.delete('aborted')
  await t.rejects(cut.ended, /cut/, 'cut without a last frame')
  t.equal(cut.body(), '')
  const gone = await b.app.inject({ url: '/ticks?count=1', headers: { 'last-event-id': 'aborted:1' } })
  t.equal(gone.statusCode, 204)
})

t.test('a follower whose Redis goes down cuts its client and logs why', async (t) => {
  const server = await privateRedis(t)
  const prefix = 'down:'
  const a = await redisInstance(t, { keyPrefix: prefix, store: { redis: server.url } })
  const b = await redisInstance(t, { keyPrefix: prefix, store: { redis: server.url } })
  const streamId = await droppedOn(a, '/ticks?count=10', 1)
  const second = await openSse(b.port, '/ticks?count=10', { headers: { 'last-event-id': `${streamId}:1` } })
  t.equal(second.status, 200)
  await new Promise((resolve) => setTimeout(resolve, 100))
  await server.stop()
  await t.rejects(second.ended, /cut/, 'cut: EventSource reconnects, perhaps to the owner')
  await eventually(() => b.warnings.some((warning) => warning.startsWith('fastify-cqrs-stream: following a stream from the store failed')), 'the warning')
})

t.test('a client that leaves while its stream is read from Redis is not followed', async (t) => {
  const prefix = keyPrefix(t)
  let gate: (() => void) | undefined
  class SlowStore extends RedisStreamStore {
    override async read (streamId: string, afterSeq: number): ReturnType<RedisStreamStore['read']> {
      const stored = await super.read(streamId, afterSeq)
      await new Promise<void>((resolve) => { gate = resolve })
      return stored
    }
  }
  const a = await redisInstance(t, { keyPrefix: prefix })
  const b = await redisInstance(t, { keyPrefix: prefix, makeStore: (options) => new SlowStore(options) })
  const streamId = await droppedOn(a, '/ticks?count=10', 0)
  const request = openSse(b.port, '/ticks?count=10', { headers: { 'last-event-id': `${streamId}:0` } })
  request.catch(() => {})
  await eventually(() => gate !== undefined, 'B reading Redis')
  // The client leaves mid-read: destroy every socket B has open.
  b.app.server.closeAllConnections()
  await t.rejects(request)
  let open = 1
  await eventually(() => {
    b.app.server.getConnections((_error, count) => { open = count })
    return open === 0
  }, 'B to see the connection close')
  gate!()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(b.warnings, [], 'nothing followed, nothing logged')
})
