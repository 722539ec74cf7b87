// RedisStreamStore on a Redis Cluster (issue #15, item 5): three masters
// that the test starts on spare ports. Every key of a stream carries its
// id as hash tag, so each stream's MULTIs and scripts stay in one slot;
// appends go in one pipeline per node, followers read per slot.
import calculateSlot from 'cluster-key-slot'
import { Redis, type Cluster } from 'ioredis'
import t from 'tap'
import { RedisStreamStore } from '../src/redis/index.js'
import type { StoredStream } from '../src/index.js'
import { frames } from './fixtures/sse-app.js'
import { eventually, openSse, startStreamId, within } from './fixtures/sse-client.js'
import { redisInstance, type RedisInstance } from './fixtures/redis-apps.js'
import { privateCluster } from './fixtures/redis-cluster-server.js'

const frame = (seq: number): { seq: number, text: string } => ({ seq, text: `id: s:${seq}\ndata: ${seq} é\n\n` })
const tick = (n: number): unknown => ({ type: 'progress', data: { n } })
const COMPLETE = { type: 'complete' }

const cluster = await privateCluster(t)

/** Connections to the cluster's nodes now, less the probes' own. */
async function clusterConnections (t: Parameters<typeof privateCluster>[0]): Promise<() => Promise<number>> {
  const probes = cluster.nodes.map((node) => new Redis(node))
  t.teardown(() => { for (const probe of probes) probe.disconnect() })
  return async () => {
    const lists = await Promise.all(probes.map((probe) => probe.client('LIST') as Promise<string>))
    return lists.reduce((sum, list) => sum + list.trim().split('\n').length - 1, 0)
  }
}

/** The count once it is `expected`, or after 5 s. */
async function settled (count: () => Promise<number>, expected: number): Promise<number> {
  let now = await count()
  for (let tries = 0; now !== expected && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    now = await count()
  }
  return now
}

t.test('streams over every master: MULTIs, scripts and batched appends in one slot each; followers read per slot and let go', async (t) => {
  const a = new RedisStreamStore({ redis: cluster.client(), keyPrefix: 'slots:' })
  const b = new RedisStreamStore({ redis: cluster.client(), keyPrefix: 'slots:', blockMs: 300 })
  t.teardown(async () => { await a.close(); await b.close() })
  const ids = Array.from({ length: 30 }, (_, i) => `stream-${i}`)
  await Promise.all(ids.map((id) => a.open(id, { scope: '/s', maxFrames: 1000 })))
  const slotMap = (a.redis as Cluster).slots
  const masters = new Set(ids.map((id) => String(slotMap[calculateSlot(`slots:{${id}}`)])))
  t.equal(masters.size, 3, 'the streams live on all three masters')
  const slots = new Set(ids.map((id) => calculateSlot(`slots:{${id}}`))).size
  t.equal(slots, 30, 'one slot per stream')
  // B's own client has its connections to every node before the count.
  for (const id of ids) t.same(await b.read(id, -1), { scope: '/s', frames: [], ended: false })
  const connections = await clusterConnections(t)
  const before = await connections()

  const controller = new AbortController()
  t.teardown(() => { controller.abort() })
  const seen = new Map<string, number[]>(ids.map((id) => [id, []]))
  const follow = async (id: string, into: number[]): Promise<void> => {
    for await (const batch of b.follow(id, 0, controller.signal)) {
      into.push(...batch.frames.map((f) => f.seq))
      if (batch.ended) return
    }
  }
  const followed = ids.map((id) => follow(id, seen.get(id)!))
  // Two followers of one stream share its slot's connection.
  const secondSeen: number[] = []
  const second = follow(ids[0]!, secondSeen)
  await Promise.all(ids.map((id) => a.append(id, frame(1))))
  await eventually(() => [...seen.values()].every((seqs) => seqs.length === 1) && secondSeen.length === 1, 'frame 1 for every follower')
  t.equal(await connections() - before, slots, `31 followers of 30 streams: ${slots} reader connections, one per slot followed`)
  // Every append of one turn, for 30 streams on three nodes: three pipelines.
  for (let seq = 2; seq <= 5; seq++) await Promise.all(ids.map((id) => a.append(id, frame(seq))))
  await Promise.all(ids.map((id) => a.end(id, 10_000)))
  await within(Promise.all([...followed, second]), 'every follower ends')
  t.same([...seen.values()], ids.map(() => [1, 2, 3, 4, 5]), 'every follower: its five frames, once, in order')
  t.same(secondSeen, [1, 2, 3, 4, 5])
  t.equal(await settled(connections, before), before, 'the slot readers let their connections go once their followers left')
  t.same(await a.read(ids[7]!, 2), { scope: '/s', frames: [frame(3), frame(4), frame(5)], ended: true }, 'replay after seq 2 (XRANGE and the scope in one MULTI)')

  // Two-step commands and delete: a hash, a script over two keys, a MULTI over three.
  await a.putCommand('two', { scope: '/s', data: '{"x":1}' }, 10_000)
  t.same(await b.takeCommand('two', ['/other'], 10_000), { taken: false, scope: '/s' })
  t.same(await b.takeCommand('two', ['/s'], 10_000), { taken: true, command: { scope: '/s', data: '{"x":1}' } })
  t.equal(await a.takeCommand('two', ['/s'], 10_000), undefined, 'taken once')
  await a.open('gone', { scope: '/s', maxFrames: 10 })
  await a.delete('gone')
  t.equal(await b.read('gone', -1), undefined)
})

t.test('a slot\'s reader with no follower left is let go; one that joins later reads on a new connection', async (t) => {
  const a = new RedisStreamStore({ redis: cluster.client(), keyPrefix: 'again:' })
  t.teardown(() => a.close())
  await a.open('s', { scope: '/s', maxFrames: 100 })
  const connections = await clusterConnections(t)
  const before = await connections()
  const first = new AbortController()
  const reading = a.follow('s', 0, first.signal)[Symbol.asyncIterator]()
  await a.append('s', frame(1))
  t.same((await reading.next()).value?.frames, [frame(1)])
  t.equal(await connections(), before + 1, 'one reader connection while followed')
  first.abort()
  t.same(await reading.next(), { done: true, value: undefined })
  t.equal(await settled(connections, before), before, 'let go')
  await a.append('s', frame(2))
  await a.end('s', 10_000)
  const seqs: number[] = []
  for await (const batch of a.follow('s', 1, new AbortController().signal)) seqs.push(...batch.frames.map((f) => f.seq))
  t.same(seqs, [2], 'a new reader for the slot')
  await a.close()
  t.same(await a.follow('s', 0, new AbortController().signal).next(), { done: true, value: undefined }, 'closed (its client is the app\'s, still open): a follow ends at once')
})

t.test('two followers of one stream, one slow: the slow one takes its batch while the other\'s read blocks, and both get the next frame', async (t) => {
  const a = new RedisStreamStore({ redis: cluster.client(), keyPrefix: 'slow:' })
  t.teardown(() => a.close())
  await a.open('s', { scope: '/s', maxFrames: 100 })
  const controller = new AbortController()
  t.teardown(() => { controller.abort() })
  const fast = a.follow('s', 0, controller.signal)[Symbol.asyncIterator]()
  const slow = a.follow('s', 0, controller.signal)[Symbol.asyncIterator]()
  const firstFast = fast.next()
  const firstSlow = slow.next()
  await a.append('s', frame(1))
  t.same((await firstFast).value?.frames, [frame(1)])
  t.same((await firstSlow).value?.frames, [frame(1)])
  // Frame 2 reaches both; the slow one does not ask for it yet, so the slot's next read blocks for the fast one alone.
  const secondFast = fast.next()
  await a.append('s', frame(2))
  t.same((await secondFast).value?.frames, [frame(2)])
  const thirdFast = fast.next()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same((await slow.next()).value?.frames, [frame(2)], 'the slow one gets frame 2 when it asks')
  const thirdSlow = slow.next()
  await a.append('s', frame(3))
  t.same((await thirdFast).value?.frames, [frame(3)])
  t.same((await thirdSlow).value?.frames, [frame(3)], 'it joined the blocked read (unblocked) and gets frame 3 live')
})

t.test('an owner that stops beating: the follower ends the stream with the lost frame (heartbeat key in a slot of its own)', async (t) => {
  const owner = new RedisStreamStore({ redis: cluster.client(), keyPrefix: 'lost:', blockMs: 200, ownerTimeoutMs: 1000 })
  const follower = new RedisStreamStore({ redis: cluster.client(), keyPrefix: 'lost:', blockMs: 200, ownerTimeoutMs: 1000 })
  t.teardown(async () => { await follower.close() })
  await owner.open('s', { scope: '/s', maxFrames: 100 })
  await owner.append('s', frame(1))
  // Gone without ending its stream: its heartbeat stops, as a crashed process's does.
  await owner.close()
  const batches: StoredStream[] = []
  for await (const batch of follower.follow('s', 0, new AbortController().signal, { lostFrame: (seq) => `data: lost after ${seq}\n\n`, keepMs: 5000 })) {
    batches.push(batch)
    if (batch.ended) break
  }
  t.same(batches.flatMap((batch) => batch.frames), [frame(1), { seq: 2, text: 'data: lost after 2\n\n' }], 'frame 1, then the lost frame, numbered 2')
  t.equal(batches.at(-1)?.ended, true)
})

async function clusterInstance (t: Parameters<typeof redisInstance>[0], prefix: string): Promise<RedisInstance> {
  return await redisInstance(t, { keyPrefix: prefix, store: { redis: cluster.client() }, resume: { windowMs: 2000 } })
}

t.test('two instances on the cluster: a client drops from A and resumes on B; two-step posted on A runs once, from B; a DELETE on B cancels A\'s stream', async (t) => {
  const a = await clusterInstance(t, 'apps:')
  const b = await clusterInstance(t, 'apps:')
  a.pacer.hold()
  a.pacer.release(2)
  const first = await openSse(a.port, '/ticks?count=4')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length === 3, 'the start frame and two ticks')
  first.destroy()
  await first.ended.catch(() => {})
  await eventually(() => a.pacer.yielded === 2, 'two ticks')
  for (let tries = 0; (await a.store.read(streamId, 1))?.frames[0]?.seq !== 2 && tries < 200; tries++) await new Promise((resolve) => setTimeout(resolve, 10))
  const second = await openSse(b.port, '/ticks?count=4', { headers: { 'last-event-id': `${streamId}:1` } })
  t.equal(second.status, 200)
  a.pacer.release(2)
  t.equal(await second.ended, frames(streamId, [tick(1), tick(2), tick(3), COMPLETE], 2), 'frames 2 to 5 once, from A through the cluster')
  t.equal(b.pacer.yielded, 0, 'the handler ran on A only')

  const posted = await a.app.inject({ method: 'POST', url: '/jobs', payload: { count: 1 } })
  t.equal(posted.statusCode, 202)
  const { url, streamId: jobId } = posted.json<{ url: string, streamId: string }>()
  b.pacer.release(1)
  const claimed = await openSse(b.port, url)
  const body = await claimed.ended
  t.match(body, `id: ${jobId}:0\n`)
  t.match(body, '"type":"complete"')
  const again = await a.app.inject({ url })
  t.equal(again.statusCode, 200)
  t.equal(again.body, body, 'a second reader on A replays it from the cluster')
  t.same({ a: a.pacer.runs, b: b.pacer.runs }, { a: 1, b: 1 }, 'the job ran once, on B (A ran the ticks stream)')

  a.pacer.hold()
  const running = await openSse(a.port, '/ticks?count=5')
  const runningId = await startStreamId(running)
  // The start frame and the stream's keys go out at once: the DELETE waits for the keys, as a real one comes later.
  for (let tries = 0; await a.store.read(runningId, -1) === undefined && tries < 200; tries++) await new Promise((resolve) => setTimeout(resolve, 10))
  const cancel = await b.app.inject({ method: 'DELETE', url: `/ticks/${runningId}` })
  t.equal(cancel.statusCode, 204, `a DELETE on B: the signal crosses the cluster to A (${cancel.body})`)
  await running.ended.catch(() => {})
  t.match(running.body(), '"code":"FST_ERR_CQRS_STREAM_CANCELLED"')
})
