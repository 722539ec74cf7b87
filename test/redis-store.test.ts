// RedisStreamStore against the real Redis: the StreamStore contract, the
// follow iteration, signals between instances, and an outage of a private
// redis-server (the machine's own is never stopped).
import { Redis } from 'ioredis'
import t from 'tap'
import { frames } from './fixtures/sse-app.js'
import { eventually, openSse, startStreamId, within } from './fixtures/sse-client.js'
import type { Teardown } from './fixtures/app-orders.js'
import { keyPrefix, privateRedis, REDIS_URL, redisInstance } from './fixtures/redis-apps.js'
import { RedisStreamStore } from '../src/redis/index.js'
import { parseSignal } from '../src/redis/stream-signal.js'
import type { StoredStream, StreamSignal } from '../src/index.js'

const frame = (seq: number): { seq: number, text: string } => ({ seq, text: `id: s:${seq}\ndata: ${seq}\n\n` })

function newStore (t: Teardown, prefix: string, options: Partial<ConstructorParameters<typeof RedisStreamStore>[0]> = {}): RedisStreamStore {
  const store = new RedisStreamStore({ redis: REDIS_URL, keyPrefix: prefix, ...options })
  t.teardown(() => store.close())
  return store
}

async function collect (iterable: AsyncIterable<StoredStream>): Promise<StoredStream[]> {
  const batches: StoredStream[] = []
  for await (const batch of iterable) batches.push(batch)
  return batches
}

t.test('open, append, read, end and delete keep the StreamStore contract', async (t) => {
  const prefix = keyPrefix(t)
  const store = newStore(t, prefix)
  t.equal(await store.read('s', 0), undefined, 'unknown stream')
  await store.open('s', { scope: '/ticks', maxFrames: 3 })
  t.same(await store.read('s', 0), { scope: '/ticks', frames: [], ended: false }, 'open, no frame yet')
  for (let seq = 1; seq <= 5; seq++) await store.append('s', frame(seq))
  t.same(await store.read('s', 0), { scope: '/ticks', frames: [frame(3), frame(4), frame(5)], ended: false }, 'the last maxFrames frames')
  t.same(await store.read('s', 4), { scope: '/ticks', frames: [frame(5)], ended: false }, 'only after afterSeq')
  t.same((await store.read('s', -1))?.frames, [frame(3), frame(4), frame(5)], '-1: every kept frame')
  await store.append('unopened', frame(1))
  t.equal(await store.read('unopened', 0), undefined, 'append without open (another instance\'s stream) is ignored')

  await store.append('s', frame(6))
  await store.end('s', 5000)
  t.same(await store.read('s', 5), { scope: '/ticks', frames: [frame(6)], ended: true })
  const redis = store.redis
  const ttl = await redis.pttl(`${prefix}{s}`)
  t.ok(ttl > 0 && ttl <= 5000, `expires after the end (${ttl} ms left)`)
  t.ok(await redis.pttl(`${prefix}{s}:scope`) > 0, 'the scope too')

  await store.open('s', { scope: '/other', maxFrames: 3 })
  t.same(await store.read('s', 0), { scope: '/other', frames: [], ended: false }, 'open again starts afresh')
  await store.append('s', frame(0))
  t.same((await store.read('s', -1))?.frames, [frame(0)], 'the start frame (seq 0) is kept: a second reader of a two-step stream starts from it')
  t.same((await store.read('s', 0))?.frames, [], 'and only it')
  await store.append('s', frame(1))
  await store.delete('s')
  t.equal(await store.read('s', 0), undefined, 'deleted')

  // A command that fails inside a MULTI rejects the call, though EXEC itself succeeds.
  await store.open('other', { scope: '/ticks', maxFrames: 3 })
  await store.redis.set(`${prefix}{other}`, 'a string, not a stream')
  await t.rejects(store.append('other', frame(1)), /WRONGTYPE/, 'the first append (a MULTI) reports the failure')
  await t.rejects(store.append('other', frame(2)), /WRONGTYPE/, 'later ones too')
  await t.rejects(store.read('other', 0), /WRONGTYPE/)
})

t.test('a running stream\'s keys expire idleTtlMs after its last frame', async (t) => {
  const prefix = keyPrefix(t)
  const store = newStore(t, prefix, { idleTtlMs: 60_000 })
  await store.open('s', { scope: '/ticks', maxFrames: 10 })
  await store.append('s', frame(1))
  const ttl = await store.redis.pttl(`${prefix}{s}`)
  t.ok(ttl > 50_000 && ttl <= 60_000, `stream key ttl ${ttl}`)
  t.ok(await store.redis.pttl(`${prefix}{s}:scope`) > 50_000, 'scope key ttl')
  await store.append('s', frame(2))
  t.same((await store.read('s', 0))?.frames, [frame(1), frame(2)], 'later appends skip the refresh')
})

for (const [name, protocolOptions] of [
  ['RESP2', { protocol: 2 }], ['RESP3', { protocol: 3 }], ['RESP3, resp3 reply mapping', { protocol: 3, replyMapping: 'resp3' }],
] as const) {
  t.test(`follow yields new frames in batches until the end (${name})`, async (t) => {
    const prefix = keyPrefix(t)
    // A short block: the follower waits through several empty ones.
    const store = newStore(t, prefix, { redis: { host: '127.0.0.1', port: 6379, ...protocolOptions }, blockMs: 20 })
    await store.open('s', { scope: '/ticks', maxFrames: 100 })
    await store.append('s', frame(1))
    const controller = new AbortController()
    const batches = collect(store.follow('s', 0, controller.signal))
    await new Promise((resolve) => setTimeout(resolve, 100))
    await store.append('s', frame(2))
    await store.append('s', frame(3))
    await new Promise((resolve) => setTimeout(resolve, 100))
    await store.end('s', 1000)
    const seen = await batches
    t.same(seen.flatMap((batch) => batch.frames), [frame(1), frame(2), frame(3)], 'every frame once, in order')
    t.same(seen.at(-1)?.ended, true, 'the last batch is the end')
    t.ok(seen.every((batch) => batch.scope === '/ticks'))
  })
}

t.test('close() ends followers and the signal subscription', async (t) => {
  const prefix = keyPrefix(t)
  const store = new RedisStreamStore({ redis: REDIS_URL, keyPrefix: prefix })
  await store.open('s', { scope: '/ticks', maxFrames: 10 })
  await store.onSignal(() => {})
  const following = collect(store.follow('s', 0, new AbortController().signal))
  await new Promise((resolve) => setTimeout(resolve, 50))
  await store.close()
  t.same(await following, [], 'the follower ends, without a batch')
  t.equal(store.redis.status, 'end', 'the store\'s own client is closed')
})

t.test('follow stops without an end when the stream is deleted, expires or the signal aborts', async (t) => {
  const prefix = keyPrefix(t)
  const store = newStore(t, prefix, { blockMs: 50 })
  await store.open('gone', { scope: '/ticks', maxFrames: 100 })
  const deleted = collect(store.follow('gone', 0, new AbortController().signal))
  await new Promise((resolve) => setTimeout(resolve, 30))
  await store.delete('gone')
  t.same(await deleted, [], 'deleted: no batch')

  await store.open('expired', { scope: '/ticks', maxFrames: 100 })
  await store.append('expired', frame(1))
  const expired = collect(store.follow('expired', 1, new AbortController().signal))
  await new Promise((resolve) => setTimeout(resolve, 30))
  await store.redis.del(`${prefix}{expired}`)
  t.same(await expired, [], 'expired (its owner died): stops after a block')

  t.same(await collect(store.follow('never', 0, new AbortController().signal)), [], 'unknown stream')

  await store.open('aborted', { scope: '/ticks', maxFrames: 100 })
  const controller = new AbortController()
  const aborted = collect(store.follow('aborted', 0, controller.signal))
  await new Promise((resolve) => setTimeout(resolve, 30))
  controller.abort()
  t.same(await aborted, [], 'aborted: it ends at once, without a batch')
  const early = new AbortController()
  early.abort()
  t.same(await collect(store.follow('aborted', 0, early.signal)), [], 'aborted before it began')
})

t.test('signals reach every listening store; malformed ones are logged and ignored', async (t) => {
  const prefix = keyPrefix(t)
  const warnings: string[] = []
  const a = newStore(t, prefix, { logger: { warn: (_object, message) => { warnings.push(message) } } })
  const b = newStore(t, prefix)
  const received: StreamSignal[] = []
  // Resolved once subscribed: a signal sent now is received.
  const stop = await a.onSignal((message) => { received.push(message) })
  const also: StreamSignal[] = []
  const stopAlso = await a.onSignal((message) => { also.push(message) })
  const follow: StreamSignal = { type: 'follow', streamId: 's', follower: 'f', seq: 3 }
  await b.signal(follow)
  await b.redis.publish(`${prefix}signals`, 'not json')
  await b.signal({ type: 'leave', streamId: 's', follower: 'f' })
  await eventually(() => received.length === 2 && warnings.length === 1, 'two signals and a warning')
  t.same(received, [follow, { type: 'leave', streamId: 's', follower: 'f' }])
  t.same(also, received, 'every listener')
  t.same(warnings, ['fastify-cqrs-stream: ignored a malformed stream signal'])
  stopAlso()
  stop()
  stop()
  t.pass('stopping twice is harmless')
  const again: StreamSignal[] = []
  const stopAgain = await a.onSignal((message) => { again.push(message) })
  await b.signal(follow)
  await eventually(() => again.length === 1, 'a new subscription after the last listener stopped')
  stopAgain()
})

t.test('a store that cannot reach Redis at boot: the app boots after closeTimeoutMs with a warning, and takes signals once Redis is there', async (t) => {
  const server = await privateRedis(t)
  await server.stop()
  const { hostname, port } = new URL(server.url)
  const warnings: string[] = []
  const instance = await redisInstance(t, {
    keyPrefix: 'boot:',
    store: { redis: { host: hostname, port: Number(port), retryStrategy: () => 50 } },
    plugin: { closeTimeoutMs: 200, logger: undefined },
    appLogger: (message) => { warnings.push(message) },
  })
  t.match(warnings, [/the stream store does not deliver signals yet/], 'booted, with a warning')
  await server.start()
  await eventually(() => instance.store.redis.status === 'ready', 'the store to reconnect')
  instance.pacer.hold()
  const client = await openSse(instance.port, '/ticks?count=3')
  const streamId = await startStreamId(client)
  // A cancel from another instance, repeated until the subscription, made on reconnect, takes it.
  const other = new Redis(server.url)
  t.teardown(() => other.quit())
  await within((async () => {
    while (instance.pacer.aborts === 0) {
      await other.publish('boot:signals', JSON.stringify({ type: 'cancel', streamId }))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })(), 'the cancel to arrive')
  t.match(await client.ended, /FST_ERR_CQRS_STREAM_CANCELLED/)
})

t.test('parseSignal accepts only well-formed signals', async (t) => {
  t.same(parseSignal('{"type":"cancel","streamId":"s"}'), { type: 'cancel', streamId: 's' })
  t.same(parseSignal('{"type":"leave","streamId":"s","follower":"f","x":1}'), { type: 'leave', streamId: 's', follower: 'f' })
  t.same(parseSignal('{"type":"follow","streamId":"s","follower":"f","seq":-1}'), { type: 'follow', streamId: 's', follower: 'f', seq: -1 })
  for (const text of ['nope', 'null', '"s"', '{"type":"cancel"}', '{"type":"cancel","streamId":""}', `{"type":"cancel","streamId":"${'x'.repeat(300)}"}`,
    '{"type":"leave","streamId":"s"}', '{"type":"follow","streamId":"s","follower":"f"}', '{"type":"follow","streamId":"s","follower":"f","seq":-2}',
    '{"type":"follow","streamId":"s","follower":"f","seq":1.5}', '{"type":"other","streamId":"s","follower":"f"}']) {
    t.equal(parseSignal(text), undefined, text)
  }
})

t.test('options: a client of the app\'s own is used and left open; bad options are refused', async (t) => {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const prefix = keyPrefix(t)
  const store = new RedisStreamStore({ redis, keyPrefix: prefix })
  t.equal(store.redis, redis)
  await store.open('s', { scope: '/', maxFrames: 1 })
  await store.close()
  t.equal(await redis.ping(), 'PONG', 'close() leaves the app\'s client open')
  const fromOptions = new RedisStreamStore({ redis: { host: '127.0.0.1', port: 6379 }, keyPrefix: prefix })
  t.same(await fromOptions.read('s', 0), { scope: '/', frames: [], ended: false }, 'ioredis options work too')
  await fromOptions.close()
  for (const [options, name] of [
    [null, 'RedisStreamStore options'], [{}, 'redis'], [{ redis: 5 }, 'redis'], [{ redis: REDIS_URL, keyPrefix: 1 }, 'keyPrefix'],
    [{ redis: REDIS_URL, idleTtlMs: 0 }, 'idleTtlMs'], [{ redis: REDIS_URL, blockMs: 1.5 }, 'blockMs'], [{ redis: REDIS_URL, logger: {} }, 'logger'],
    [{ redis: REDIS_URL, ownerTimeoutMs: 0 }, 'ownerTimeoutMs'], [{ redis: REDIS_URL, blockMs: 3000, ownerTimeoutMs: 3250 }, 'ownerTimeoutMs'],
  ] as const) {
    t.throws(() => new RedisStreamStore(options as never), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: new RegExp(`"${name}"`) })
  }
})

t.test('Redis down: streams still run, without resume, with one warning per stream', async (t) => {
  const server = await privateRedis(t)
  const storeWarnings: string[] = []
  const a = await redisInstance(t, {
    keyPrefix: 'down:',
    store: { redis: server.url, logger: { warn: (_object, message) => { storeWarnings.push(message) } } },
  })
  a.pacer.hold()
  a.pacer.release(1)
  const running = await openSse(a.port, '/ticks?count=3')
  const streamId = await startStreamId(running)
  await running.until(() => running.parser.frames.length === 2, 'a tick while Redis runs')
  await server.stop()
  a.pacer.release()
  const body = await running.ended
  t.match(body, /"type":"complete"/, 'the running stream completes')
  await eventually(() => a.warnings.length === 1, 'a warning for the stream')
  t.match(a.warnings[0], /the stream store failed; this stream goes on without resume: .*(Redis connection is|Connection is closed|ECONNREFUSED|max retries)/i)
  await eventually(() => storeWarnings.length > 0, 'the store to log its lost connection')

  const again = await a.app.inject({ url: '/ticks?count=3', headers: { 'last-event-id': `${streamId}:1` } })
  t.equal(again.statusCode, 503, 'no resume while Redis is down: a coded 503, which ends EventSource')
  t.equal(again.json().code, 'FST_ERR_CQRS_STREAM_STORE_UNAVAILABLE')
  const fresh = await a.app.inject({ url: '/ticks?count=2' })
  t.equal(fresh.statusCode, 200, 'a new stream runs')
  const freshId = /"streamId":"([^"]+)"/.exec(fresh.body)![1]!
  t.equal(fresh.body, `id: ${freshId}:0\nretry: 1000\ndata: ${JSON.stringify({ type: 'start', streamId: freshId, cancelUrl: `/ticks/${freshId}` })}\n\n` +
    frames(freshId, [{ type: 'progress', data: { n: 0 } }, { type: 'progress', data: { n: 1 } }, { type: 'complete' }], 1))
  await eventually(() => a.warnings.length === 2, 'one warning for the new stream')
})

t.test('appends of one turn go as one pipeline, in order, and each learns its own outcome', async (t) => {
  const prefix = keyPrefix(t)
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  let pipelines = 0
  const pipeline = redis.pipeline.bind(redis)
  redis.pipeline = ((...args: Parameters<typeof redis.pipeline>) => {
    pipelines++
    return pipeline(...args)
  }) as typeof redis.pipeline
  const store = new RedisStreamStore({ redis, keyPrefix: prefix })
  t.teardown(() => store.close())
  await store.open('a', { scope: '/a', maxFrames: 1000 })
  await store.open('b', { scope: '/b', maxFrames: 1000 })
  const appends: Array<Promise<void>> = []
  for (let seq = 0; seq < 500; seq++) {
    appends.push(store.append('a', { seq, text: `a${seq}` }))
    appends.push(store.append('b', { seq, text: `b${seq}` }))
  }
  // Read in the same turn: it sends the batch first, so it sees every frame.
  const read = await store.read('a', -1)
  await Promise.all(appends)
  t.equal(pipelines, 1, '1,000 appends of two streams, one round trip')
  t.equal(read!.frames.length, 500)
  t.same(read!.frames.slice(0, 2), [{ seq: 0, text: 'a0' }, { seq: 1, text: 'a1' }])
  t.same((await store.read('b', 497))!.frames.map((frame) => frame.text), ['b498', 'b499'])

  // One bad append (a seq not above the last) fails alone.
  const late = store.append('a', { seq: 3, text: 'again' })
  const fine = store.append('b', { seq: 500, text: 'b500' })
  await t.rejects(late, /equal or smaller than the target stream top item/)
  await fine
  t.equal((await store.read('b', 499))!.frames[0]!.text, 'b500')
})

t.test('appends whose connection closes before their turn ends are rejected, each', async (t) => {
  const prefix = keyPrefix(t)
  const store = new RedisStreamStore({ redis: REDIS_URL, keyPrefix: prefix })
  t.teardown(() => store.close())
  await store.open('c', { scope: '/c', maxFrames: 10 })
  const appends = [store.append('c', { seq: 0, text: 'x' }), store.append('c', { seq: 1, text: 'y' })]
  store.redis.disconnect()
  for (const append of appends) await t.rejects(append, /Connection is closed/)
})

t.test('batched frames keep any text: multi-byte UTF-8, colons and line breaks', async (t) => {
  const prefix = keyPrefix(t)
  const store = new RedisStreamStore({ redis: REDIS_URL, keyPrefix: prefix })
  t.teardown(() => store.close())
  await store.open('u', { scope: '/u', maxFrames: 100 })
  const texts = ['id: u:0\ndata: {"é":"ü"}\n\n', 'data: 1:2:3\n\n', '😀 🚀 ::::', '', 'ж'.repeat(1000)]
  await Promise.all(texts.map((text, seq) => store.append('u', { seq, text })))
  t.same((await store.read('u', -1))!.frames, texts.map((text, seq) => ({ seq, text })))
})

t.test('200,000 appends in one turn go as one command, not as 400,000 call arguments', async (t) => {
  // Spreading two arguments per frame into one call overflowed the stack
  // (RangeError in setImmediate, an uncaught exception) past ~100,000 frames.
  const prefix = keyPrefix(t)
  const store = newStore(t, prefix)
  await store.open('big', { scope: '/big', maxFrames: 200_000 })
  const appends: Array<Promise<void>> = []
  for (let seq = 1; seq <= 200_000; seq++) appends.push(store.append('big', frame(seq)))
  await Promise.all(appends)
  const { frames } = (await store.read('big', 199_997))!
  t.same(frames, [frame(199_998), frame(199_999), frame(200_000)])
  t.equal(await store.redis.xlen(`${prefix}{big}`), 200_000)
})
