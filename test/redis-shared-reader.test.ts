// One Redis reader per instance (issue #15, item 3): every follower of a
// store reads through one XREAD connection, against a private Redis whose
// connections the test can count.
import { Redis } from 'ioredis'
import t from 'tap'
import { RedisStreamStore } from '../src/redis/index.js'
import { compareIds, SharedReader } from '../src/redis/shared-reader.js'
import { privateRedis } from './fixtures/redis-apps.js'
import { eventually } from './fixtures/sse-client.js'
import type { StoredStream } from '../src/index.js'

const frame = (seq: number): { seq: number, text: string } => ({ seq, text: `id: s:${seq}\ndata: ${seq}\n\n` })

async function connections (url: string): Promise<number> {
  const probe = new Redis(url)
  const list = await probe.client('LIST') as string
  await probe.quit()
  // Less the probe itself.
  return list.trim().split('\n').length - 1
}

t.test('1,000 followers of 1,000 streams: one reader connection, not 1,000; each gets its frames, live, in order', async (t) => {
  const server = await privateRedis(t)
  const owner = new RedisStreamStore({ redis: server.url, keyPrefix: 'many:' })
  const followers = new RedisStreamStore({ redis: server.url, keyPrefix: 'many:' })
  t.teardown(async () => {
    await followers.close()
    await owner.close()
  })
  const count = 1000
  for (let i = 0; i < count; i++) await owner.open(`s${i}`, { scope: '/s', maxFrames: 10 })
  const before = await connections(server.url)
  const controller = new AbortController()
  const got: StoredStream['frames'][number][][] = Array.from({ length: count }, () => [])
  const done = Array.from({ length: count }, async (_, i) => {
    for await (const batch of followers.follow(`s${i}`, 0, controller.signal)) {
      got[i]!.push(...batch.frames)
      if (batch.ended) return
    }
  })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const during = await connections(server.url)
  t.equal(during - before, 1, `${count} followers hold ${during - before} connection(s) of their own (one per follower before)`)
  for (let seq = 1; seq <= 3; seq++) {
    await Promise.all(Array.from({ length: count }, (_, i) => owner.append(`s${i}`, frame(seq))))
    await eventually(() => got.every((frames) => frames.length === seq), `frame ${seq} at every follower`, 10_000)
  }
  for (let i = 0; i < count; i++) await owner.end(`s${i}`, 10_000)
  await Promise.all(done)
  t.ok(got.every((frames) => JSON.stringify(frames) === JSON.stringify([frame(1), frame(2), frame(3)])), 'every follower: frames 1, 2, 3, once, in order')
  controller.abort()
})

t.test('a slow follower holds one batch, not the others: they go on, and it gets every frame after', async (t) => {
  const server = await privateRedis(t)
  const store = new RedisStreamStore({ redis: server.url, keyPrefix: 'slow:' })
  t.teardown(() => store.close())
  await store.open('slow', { scope: '/s', maxFrames: 1000 })
  await store.open('fast', { scope: '/s', maxFrames: 1000 })
  const controller = new AbortController()
  const slow = store.follow('slow', 0, controller.signal)[Symbol.asyncIterator]()
  const fastFrames: number[] = []
  const fast = (async () => {
    for await (const batch of store.follow('fast', 0, controller.signal)) {
      fastFrames.push(...batch.frames.map((f) => f.seq))
      if (batch.ended) return
    }
  })()
  await store.append('slow', frame(1))
  const first = await slow.next()
  t.same(first.value?.frames, [frame(1)])
  // The slow one does not ask for more while 100 frames of each arrive.
  for (let seq = 2; seq <= 101; seq++) {
    await store.append('slow', frame(seq))
    await store.append('fast', frame(seq - 1))
  }
  await eventually(() => fastFrames.length === 100, 'the fast follower gets its 100 frames')
  await store.end('slow', 10_000)
  await store.end('fast', 10_000)
  const slowFrames: number[] = []
  for (let next = await slow.next(); next.done !== true; next = await slow.next()) slowFrames.push(...next.value.frames.map((f) => f.seq))
  t.same(slowFrames, Array.from({ length: 100 }, (_, i) => i + 2), 'the slow one, once it asks: frames 2 to 101, once, in order')
  await fast
})

t.test('when every follower holds a batch, the reader does not read (no XREAD) until one asks again', async (t) => {
  const server = await privateRedis(t)
  const store = new RedisStreamStore({ redis: server.url, keyPrefix: 'held:' })
  t.teardown(() => store.close())
  await store.open('held', { scope: '/s', maxFrames: 1000 })
  const controller = new AbortController()
  t.teardown(() => { controller.abort() })
  const follower = store.follow('held', 0, controller.signal)[Symbol.asyncIterator]()
  await store.append('held', frame(1))
  t.same((await follower.next()).value?.frames, [frame(1)])
  await store.append('held', frame(2))
  const probe = new Redis(server.url)
  t.teardown(() => probe.quit())
  const xreads = async (): Promise<number> => {
    const stats = await probe.info('commandstats')
    return Number(/cmdstat_xread:calls=(\d+)/.exec(stats)?.[1] ?? 0)
  }
  // The reader hands frame 2 out and then has nothing to read for.
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
  let before = await xreads()
  for (let tries = 0; tries < 20; tries++) {
    await sleep(300)
    const now = await xreads()
    if (now === before) break
    before = now
  }
  await sleep(600)
  t.equal(await xreads(), before, 'no XREAD while the only follower holds its batch (blockMs would have made one every 250 ms)')
  t.same((await follower.next()).value?.frames, [frame(2)])
  await store.append('held', frame(3))
  t.same((await follower.next()).value?.frames, [frame(3)], 'asking again starts the reads again')
  t.ok(await xreads() > before)
})

t.test('the reader\'s connection fails: every follower\'s read rejects; the next followers read again once Redis is back', async (t) => {
  const server = await privateRedis(t)
  const store = new RedisStreamStore({ redis: server.url, keyPrefix: 'cut:', logger: { warn () {} } })
  t.teardown(() => store.close())
  await store.open('a', { scope: '/s', maxFrames: 10 })
  const reading = (async () => {
    for await (const batch of store.follow('a', 0, new AbortController().signal)) t.fail(`no batch, got ${JSON.stringify(batch)}`)
  })()
  await new Promise((resolve) => setTimeout(resolve, 100))
  await server.stop()
  await t.rejects(reading, 'the follower\'s read rejects')
  await server.start()
  let followed: StoredStream[] | undefined
  for (let tries = 0; tries < 100 && followed === undefined; tries++) {
    try {
      await store.open('b', { scope: '/s', maxFrames: 10 })
      const controller = new AbortController()
      const batches: StoredStream[] = []
      const iteration = (async () => {
        for await (const batch of store.follow('b', 0, controller.signal)) {
          batches.push(batch)
          if (batch.ended) return
        }
      })()
      await store.append('b', frame(1))
      await store.end('b', 10_000)
      await iteration
      followed = batches
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  t.same(followed?.flatMap((batch) => batch.frames), [frame(1)], 'followed again after the reconnect')
})

t.test('a reader that cannot connect fails its readings; a closed one ends a reading at once', async (t) => {
  // A port nothing listens on (a private server, stopped).
  const server = await privateRedis(t)
  await server.stop()
  const errors: unknown[] = []
  const connections: Redis[] = []
  const reader = new SharedReader({
    connect: () => {
      const connection = new Redis(server.url, { retryStrategy: () => null, maxRetriesPerRequest: 0 })
      connections.push(connection)
      return connection
    },
    unblock: async () => {},
  }, 200, (error) => { errors.push(error) })
  t.teardown(() => { for (const connection of connections) connection.disconnect() })
  const read = async (): Promise<unknown[]> => {
    const batches: unknown[] = []
    for await (const batch of reader.read('k', '0-0', new AbortController().signal)) batches.push(batch)
    return batches
  }
  await t.rejects(read(), { message: /ECONNREFUSED|Connection is closed|Reached the max retries/ }, 'the reading fails with the connection\'s error')
  t.ok(errors.length > 0, 'and the connection error is reported')
  reader.close()
  t.same(await read(), [], 'closed: ends at once, with nothing')
})

t.test('compareIds orders stream entry ids by time, then sequence', async (t) => {
  t.equal(compareIds('0-2', '0-10'), -1)
  t.equal(compareIds('1-0', '0-99'), 1)
  t.equal(compareIds('5-5', '5-5'), 0)
  t.equal(compareIds('2-0', '10-0'), -1)
})
