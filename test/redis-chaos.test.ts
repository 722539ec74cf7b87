// Crashes, with processes the test started: the owner of a stream SIGKILLed
// while clients follow it on another instance, and a private Redis
// restarted under running streams.
import t from 'tap'
import { streamCommand, StreamCommandError } from '../src/client/index.js'
import { ownerProcess } from './fixtures/child-instance.js'
import { CuttingProxy } from './fixtures/cutting-proxy.js'
import { keyPrefix, privateRedis, REDIS_URL, redisInstance } from './fixtures/redis-apps.js'
import { frames } from './fixtures/sse-app.js'
import { eventually, openSse, startStreamId, within } from './fixtures/sse-client.js'

interface Data { type: string, data?: { n: number }, error?: { code: string, message: string } }

t.test('the owner is SIGKILLed mid-stream: followers on B end with FST_ERR_CQRS_STREAM_OWNER_LOST within ownerTimeoutMs; a reconnect then gets 204; nothing runs again', async (t) => {
  const prefix = keyPrefix(t)
  const a = await ownerProcess(t, prefix, REDIS_URL)
  const b = await redisInstance(t, { keyPrefix: prefix })
  const first = await openSse(a.port, '/ticks?count=100000')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length >= 3, 'two ticks on A')
  const seen = first.parser.frames.at(-1)!.id!
  first.destroy()
  await first.ended.catch(() => {})

  // Two clients follow the stream on B: a raw one and the typed client.
  const raw = await openSse(b.port, '/ticks?count=100000', { headers: { 'last-event-id': seen } })
  t.equal(raw.status, 200)
  const typed: Data[] = []
  const typedDone = (async () => {
    for await (const frame of streamCommand(`http://127.0.0.1:${b.port}/ticks?count=100000`, { resume: { lastEventId: seen }, maxReconnects: 0 })) {
      typed.push(frame as Data)
    }
  })().then(() => undefined, (error: unknown) => error)
  await raw.until(() => raw.parser.frames.length >= 3, 'live ticks on B, through Redis')
  await eventually(() => typed.length >= 3, 'live ticks for the typed client')

  const killedAt = Date.now()
  await a.kill()
  const body = await within(raw.ended, 'the follower to end', 15_000)
  const detectedMs = Date.now() - killedAt
  const datas = raw.parser.frames.map((frame) => JSON.parse(frame.data) as Data)
  const last = datas.at(-1)!
  t.same(last, {
    type: 'error',
    error: {
      code: 'FST_ERR_CQRS_STREAM_OWNER_LOST',
      message: 'fastify-cqrs-stream: the server that ran this stream stopped before it finished. It was not run again: check its outcome, then send the command again if needed.',
    },
  })
  t.ok(datas.slice(0, -1).every((data) => data.type === 'progress'), 'ticks, then the error frame')
  const firstSeq = Number(seen.split(':')[1]) + 1
  t.same(raw.parser.frames.map((frame) => frame.id), raw.parser.frames.map((_, i) => `${streamId}:${firstSeq + i}`), 'every frame once, in order, the error frame numbered after the last tick')
  t.ok(detectedMs < 10_000, `ended ${detectedMs} ms after the kill (ownerTimeoutMs: 5000)`)
  t.match(body, /"code":"FST_ERR_CQRS_STREAM_OWNER_LOST"/)

  const error = await typedDone
  t.ok(error instanceof StreamCommandError, 'the typed client rejects')
  t.equal((error as StreamCommandError).code, 'FST_ERR_CQRS_STREAM_OWNER_LOST')

  const lastId = raw.parser.frames.at(-1)!.id!
  const after = await b.app.inject({ url: '/ticks?count=100000', headers: { 'last-event-id': lastId } })
  t.equal(after.statusCode, 204, 'a reconnect after the error frame: 204, EventSource stops')
  const earlier = await b.app.inject({ url: '/ticks?count=100000', headers: { 'last-event-id': raw.parser.frames.at(-2)!.id! } })
  t.equal(earlier.body, raw.parser.frames.slice(-1).map((frame) => `id: ${frame.id}\ndata: ${frame.data}\n\n`).join(''), 'one from before it gets the same error frame, from Redis')
  t.equal(b.pacer.runs, 0, 'never run again')
  t.same(b.warnings, [], 'nothing logged')
})

t.test('an owner that is alive is never taken for lost: a follower on B through 3 s of silence gets every frame', async (t) => {
  const prefix = keyPrefix(t)
  // A short timeout, so 3 s of silence spans several of its checks.
  const store = { blockMs: 200, ownerTimeoutMs: 1500 }
  const a = await redisInstance(t, { keyPrefix: prefix, store })
  const b = await redisInstance(t, { keyPrefix: prefix, store })
  a.pacer.hold()
  a.pacer.release(1)
  const first = await openSse(a.port, '/ticks?count=3')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 2, 'a tick')
  first.destroy()
  await first.ended.catch(() => {})
  await eventually(() => a.app.streamStats().openStreams === 1, 'still running on A')
  const second = await openSse(b.port, '/ticks?count=3', { headers: { 'last-event-id': `${streamId}:1` } })
  await new Promise((resolve) => setTimeout(resolve, 3000))
  a.pacer.release()
  t.equal(await second.ended, frames(streamId, [{ type: 'progress', data: { n: 1 } }, { type: 'progress', data: { n: 2 } }, { type: 'complete' }], 2))
})

t.test('a private Redis restarted mid-stream: the stream goes on without resume, and streams started after resume again', async (t) => {
  const server = await privateRedis(t)
  const a = await redisInstance(t, { keyPrefix: 'restart:', store: { redis: server.url, logger: { warn () {} } } })
  const b = await redisInstance(t, { keyPrefix: 'restart:', store: { redis: server.url, logger: { warn () {} } } })
  a.pacer.hold()
  a.pacer.release(1)
  const running = await openSse(a.port, '/ticks?count=4')
  const oldId = await startStreamId(running)
  await running.until(() => running.parser.frames.length === 2, 'a tick')
  await server.stop()
  a.pacer.release(1)
  await running.until(() => running.parser.frames.length === 3, 'a tick while Redis is down')
  await server.start()
  a.pacer.release()
  t.match(await running.ended, /"type":"complete"/, 'the stream went on to its end')

  // Once the store's connections are back, a new stream's tail is replayed by the other instance.
  let status = 0
  for (let tries = 0; tries < 100 && status !== 200; tries++) {
    a.pacer.hold()
    a.pacer.release(1)
    const fresh = await openSse(a.port, '/ticks?count=2')
    const streamId = await startStreamId(fresh)
    await fresh.until(() => fresh.parser.frames.length === 2, 'a tick')
    fresh.destroy()
    await fresh.ended.catch(() => {})
    a.pacer.release()
    await eventually(() => a.app.streamStats().openStreams === 0, 'the stream to end on A')
    const resumed = await b.app.inject({ url: '/ticks?count=2', headers: { 'last-event-id': `${streamId}:1` } })
    status = resumed.statusCode
    if (status === 200) t.equal(resumed.body, frames(streamId, [{ type: 'progress', data: { n: 1 } }, { type: 'complete' }], 2), 'resumed on B after the restart')
  }
  t.equal(status, 200)
  // The stream's tick before the restart may have reached the new Redis
  // (ioredis sends a command again after a reconnect): A deletes that log
  // once Redis answers, and a follower B started before the delete is cut
  // when it lands. Its client reconnects, as EventSource does.
  let lost = 0
  for (let tries = 0; tries < 20 && lost !== 204; tries++) {
    lost = await b.app.inject({ url: '/ticks?count=4', headers: { 'last-event-id': `${oldId}:1` } }).then((reply) => reply.statusCode, () => 0)
  }
  t.equal(lost, 204, 'the stream whose keys the restart lost cannot be resumed: 204, not a hole')
})

t.test('the owner loses its Redis connection mid-stream: it deletes the log once Redis answers again, so a follower on B ends and a reconnect gets 204 (no wait for the 10-minute TTL, no hole)', async (t) => {
  const prefix = keyPrefix(t)
  const proxy = await CuttingProxy.start(Number(new URL(REDIS_URL).port))
  t.teardown(() => proxy.close())
  const a = await redisInstance(t, { keyPrefix: prefix, store: { redis: `redis://127.0.0.1:${new URL(proxy.url).port}`, logger: { warn () {} } } })
  const b = await redisInstance(t, { keyPrefix: prefix })
  a.pacer.hold()
  a.pacer.release(1)
  const first = await openSse(a.port, '/ticks?count=5')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 2, 'a tick')
  first.destroy()
  await first.ended.catch(() => {})
  const follower = await openSse(b.port, '/ticks?count=5', { headers: { 'last-event-id': `${streamId}:2` } })
  t.equal(follower.status, 200)
  await eventually(() => b.app.streamStats().followers === 1, 'B to follow the stream')

  // A's connections drop and cannot come back for now: its next frame cannot be stored.
  proxy.refusing = true
  proxy.cut()
  await eventually(() => a.store.redis.status !== 'ready', "A's client to see the drop")
  a.pacer.release(1)
  await eventually(() => a.warnings.some((w) => w.startsWith('fastify-cqrs-stream: the stream store failed')), 'the failed append')
  proxy.refusing = false
  await within(follower.ended.then(() => 'ended', () => 'cut'), 'the follower on B to end once A deleted the log', 10_000)
  t.same(follower.parser.frames.map((frame) => frame.id), [], 'B sent nothing: no frame of A reached the store after the drop')
  const again = await b.app.inject({ url: '/ticks?count=5', headers: { 'last-event-id': `${streamId}:2` } })
  t.equal(again.statusCode, 204, 'a reconnect to B: 204, EventSource stops')
  const onA = await a.app.inject({ url: '/ticks?count=5', headers: { 'last-event-id': `${streamId}:2` } })
  t.equal(onA.statusCode, 204, 'and on A, which runs it without resume')
  a.pacer.release()
  await eventually(() => a.app.streamStats().openStreams === 0, 'the stream to end on A')
})
