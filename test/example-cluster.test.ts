// The cluster demo: two example-app instances sharing Redis behind the
// round-robin proxy. A client that drops is resumed by the other instance.
import { spawn } from 'node:child_process'
import { createServer, request } from 'node:http'
import { randomUUID } from 'node:crypto'
import { connect } from 'amqplib'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { buildApp } from '../example-app/app.js'
import { roundRobinProxy } from '../example-app/round-robin-proxy.js'
import { sharedServices } from '../example-app/shared-services.js'
import { RedisStreamStore } from '../src/redis/index.js'
import { keyPrefix, REDIS_URL } from './fixtures/redis-apps.js'
import { listen, openSse, startStreamId } from './fixtures/sse-client.js'
import { plainEnv } from './fixtures/child-instance.js'
import { streamCommand, type StreamCommandError } from '../src/client/index.js'
import { isFree } from './fixtures/free-ports.js'
import { observer, takeAll } from './fixtures/amqp-rabbit.js'
import { PG_URL } from './fixtures/postgres.js'
import { PostgresOutbox } from '../src/postgres/index.js'
import pg from 'pg'

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const EXCHANGE = `test.cluster.${randomUUID()}`

// The exchange the instances assert, deleted after the tests.
t.teardown(async () => {
  const connection = await connect(AMQP_URL)
  const channel = await connection.createChannel()
  await channel.deleteExchange(EXCHANGE)
  await connection.close()
})
const ids = ['a', 'b', 'c', 'd', 'e', 'f']
const query = ids.map((id) => `orderIds=${id}`).join('&')

t.test('through the proxy, a stream dropped on one instance resumes on the other', async (t) => {
  const prefix = keyPrefix(t)
  const instances = []
  for (const name of ['one', 'two']) {
    const streamStore = new RedisStreamStore({ redis: REDIS_URL, keyPrefix: prefix })
    const app = await buildApp({ orderDelayMs: 50, instance: name, streamStore })
    t.teardown(async () => {
      await app.close()
      await streamStore.close()
    })
    instances.push({ host: '127.0.0.1', port: await listen(app) })
  }
  const proxy = roundRobinProxy(instances)
  t.teardown(() => new Promise((resolve) => { proxy.closeAllConnections(); proxy.close(resolve) }))
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const port = (proxy.address() as AddressInfo).port

  const first = await openSse(port, `/orders/process?${query}`)
  t.equal(first.headers['x-instance'], 'one')
  const streamId = await startStreamId(first)
  await first.until(() => first.parser.frames.length >= 3, 'two results')
  const seen = first.parser.frames.length - 1
  const cut = await fetch(`http://127.0.0.1:${port}/_proxy/cut`, { method: 'POST' })
  t.same(await cut.json(), { cut: 1 }, 'the proxy cuts the stream, as a network blip would')
  await t.rejects(first.ended, /cut/)

  const second = await openSse(port, `/orders/process?${query}`, { headers: { 'last-event-id': first.parser.frames.at(-1)!.id! } })
  t.equal(second.status, 200)
  t.equal(second.headers['x-instance'], 'two', 'the proxy sent the reconnect to the other instance')
  await second.ended
  const frames = [...first.parser.frames, ...second.parser.frames]
  t.same(frames.map((frame) => frame.id), Array.from({ length: ids.length + 2 }, (_, seq) => `${streamId}:${seq}`), `every frame once, in order (${seen} before the drop)`)
  const results = frames.slice(1, -1).map((frame) => JSON.parse(frame.data).data.orderId)
  t.same(results, ids, 'each order processed once')
  t.equal(JSON.parse(frames.at(-1)!.data).type, 'complete')

  await new Promise<void>((resolve) => { proxy.closeAllConnections(); proxy.close(() => resolve()) })
})

t.test('the proxy answers 502 when an instance is unreachable', async (t) => {
  const proxy = roundRobinProxy([{ host: '127.0.0.1', port: 1 }])
  t.teardown(() => new Promise((resolve) => proxy.close(resolve)))
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const res = await fetch(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}/health`)
  t.equal(res.status, 502)
  t.match(await res.text(), /upstream 127\.0\.0\.1:1 is unreachable/)
})

t.test('the proxy tries the next instance for a GET that an instance refuses (one was killed), not for a POST', async (t) => {
  const app = await buildApp({ orderDelayMs: 0, instance: 'alive' })
  t.teardown(() => app.close())
  const alive = { host: '127.0.0.1', port: await listen(app) }
  const proxy = roundRobinProxy([{ host: '127.0.0.1', port: 1 }, alive])
  t.teardown(() => new Promise((resolve) => { proxy.closeAllConnections(); proxy.close(resolve) }))
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`${base}/health`)
    t.equal(res.status, 200, `GET ${i + 1}: answered by the live instance`)
    t.equal(res.headers.get('x-instance'), 'alive')
  }
  const posted = await fetch(`${base}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"orderIds":["a"]}' })
  t.equal(posted.status, 502, 'a POST reaching the dead one is not sent twice')
})

t.test('the proxy cuts the client when an instance cuts a response it began', async (t) => {
  // An instance that sends its headers and a frame, then loses its socket.
  const upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: 1\n\n', () => { res.socket!.resetAndDestroy() })
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => upstream.close(resolve)))
  const proxy = roundRobinProxy([{ host: '127.0.0.1', port: (upstream.address() as AddressInfo).port }])
  t.teardown(() => new Promise((resolve) => { proxy.closeAllConnections(); proxy.close(resolve) }))
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const client = await openSse((proxy.address() as AddressInfo).port, '/stream')
  t.equal(client.status, 200)
  await t.rejects(client.ended, /cut/, 'cut, not ended: EventSource reconnects')
  t.equal(client.body(), 'data: 1\n\n')

  // The same while the request is still being sent: the forwarded request fails too.
  const port = (proxy.address() as AddressInfo).port
  const cut = await new Promise<string>((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/stream', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('close', () => { resolve(res.complete ? 'ended' : `cut after ${JSON.stringify(body)}`) })
    })
    req.on('error', () => {})
    req.write('a body that never ends')
  })
  t.equal(cut, 'cut after "data: 1\\n\\n"')
})

t.test('sharedServices: in memory without REDIS_URL, AMQP_URL and DATABASE_URL; Redis, RabbitMQ and the PostgreSQL outbox with them', async (t) => {
  const none = await sharedServices({})
  t.same(none.options, { broker: undefined, streamStore: undefined })
  await none.close()
  const both = await sharedServices({ REDIS_URL, AMQP_URL, AMQP_EXCHANGE: EXCHANGE })
  t.ok(both.options.streamStore instanceof RedisStreamStore)
  t.equal(typeof both.options.broker?.send, 'function')
  await both.close()
  const all = await sharedServices({ REDIS_URL, AMQP_URL, AMQP_EXCHANGE: EXCHANGE, DATABASE_URL: PG_URL })
  t.ok(all.options.broker instanceof PostgresOutbox, 'notifications go through the outbox')
  t.equal(typeof all.options.itemTransactions?.middleware, 'function', 'and orders are written in item transactions')
  await all.close()
  const outboxOnly = await sharedServices({ DATABASE_URL: PG_URL })
  t.ok(outboxOnly.options.broker instanceof PostgresOutbox, 'without AMQP_URL, the relay keeps them in memory')
  // The demo app on them: each order a row of demo_orders, in its item's transaction.
  const app = await buildApp({ orderDelayMs: 0, ...outboxOnly.options })
  const response = await app.inject({ url: '/orders/process?orderIds=p&orderIds=q' })
  const streamId = (JSON.parse(response.body.split('\n').find((line) => line.startsWith('data: '))!.slice(6)) as { streamId: string }).streamId
  await app.close()
  const rows = await (outboxOnly.options.broker as PostgresOutbox).pool.query('SELECT order_id FROM demo_orders WHERE stream_id = $1 ORDER BY order_id', [streamId])
  t.same(rows.rows, [{ order_id: 'p' }, { order_id: 'q' }], 'the demo writes its orders to PostgreSQL')
  await outboxOnly.close()
  await t.rejects(sharedServices({ REDIS_URL, AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' }), { code: 'FST_ERR_CQRS_STREAM_BROKER_UNAVAILABLE' })
  await t.rejects(sharedServices({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }), { code: 'ECONNREFUSED' })
})

/**
 * A port P with P+1 and P+2 free too (the cluster takes all three), below
 * Linux's ephemeral range (32768 on), where other tests' sockets land.
 */
async function threeFreePorts (): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * 22_000)
    if (await isFree(port) && await isFree(port + 1) && await isFree(port + 2)) return port
  }
}

t.test('npm run start:cluster: two instances behind the proxy, stopped by SIGTERM', async (t) => {
  const port = await threeFreePorts()
  const watch = await observer(t)
  const shippedQueue = await watch.boundQueue(EXCHANGE, 'orders.shipped')
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../example-app/cluster.ts', import.meta.url))], {
    env: { ...plainEnv(), PORT: String(port), AMQP_EXCHANGE: EXCHANGE, DATABASE_URL: PG_URL },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = once(child, 'exit')
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  for (let tries = 0; !output.includes('cluster: open') && tries < 300; tries++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(output, `cluster: open http://127.0.0.1:${port}/`)
  const served = []
  for (let i = 0; i < 2; i++) served.push((await (await fetch(`http://127.0.0.1:${port}/health`)).json() as { instance: string }).instance)
  t.same(served.sort(), ['instance-1', 'instance-2'], 'round robin over both instances')
  // Two-step through the round robin: the POST reaches one instance, its GET the other.
  const posted = await fetch(`http://127.0.0.1:${port}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orderIds: ['x', 'y'] }) })
  t.equal(posted.status, 202)
  const postedOn = posted.headers.get('x-instance')
  const { url } = await posted.json() as { url: string }
  const streamed = await openSse(port, url)
  t.equal(streamed.status, 200)
  t.not(streamed.headers['x-instance'], postedOn, `posted on ${postedOn}, streamed on ${String(streamed.headers['x-instance'])}`)
  await streamed.ended
  const datas = streamed.parser.frames.map((frame) => JSON.parse(frame.data) as { type: string, data?: { orderId: string } })
  t.same(datas.map((data) => data.type), ['start', 'progress', 'progress', 'complete'])
  t.same(datas.slice(1, 3).map((data) => data.data!.orderId), ['x', 'y'])
  // Each order a row in PostgreSQL, committed with its OrderShipped, which a relay published to RabbitMQ.
  const db = new pg.Client({ connectionString: PG_URL })
  await db.connect()
  t.teardown(() => db.end())
  const streamId = url.split('/').at(-1)!
  t.same((await db.query('SELECT order_id FROM demo_orders WHERE stream_id = $1 ORDER BY order_id', [streamId])).rows, [{ order_id: 'x' }, { order_id: 'y' }])
  const shipped: string[] = []
  for (let tries = 0; tries < 100 && shipped.length < 2; tries++) {
    for (const message of await takeAll(watch.channel, shippedQueue)) {
      const { orderId } = JSON.parse(message.content.toString()) as { orderId: string }
      if (orderId === 'x' || orderId === 'y') shipped.push(orderId)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.same(shipped.sort(), ['x', 'y'], 'OrderShipped for both, through the outbox')

  // The crash demo: SIGKILL the instance that runs a stream. The client reconnects through the proxy to
  // the other one, which follows the stream from Redis until it sees the owner gone: the coded error.
  const pids = Object.fromEntries([...output.matchAll(/(instance-\d) :\d+ pid (\d+)/g)].map((found) => [found[1], Number(found[2])]))
  t.same(Object.keys(pids).sort(), ['instance-1', 'instance-2'], 'the cluster prints its instances\' pids')
  const longRun = Array.from({ length: 100 }, (_, i) => `orderIds=o${i}`).join('&')
  const seen: Array<{ type: string }> = []
  let runsOn: string | undefined
  const ended = (async () => {
    for await (const frame of streamCommand(`http://127.0.0.1:${port}/orders/process?${longRun}`, {
      fetch: async (input, init) => {
        const answer = await fetch(input, init)
        runsOn ??= answer.headers.get('x-instance') ?? undefined
        return answer
      },
    })) seen.push(frame)
  })().then(() => undefined, (error: unknown) => error)
  for (let tries = 0; seen.length < 3 && tries < 200; tries++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(runsOn !== undefined && seen.length >= 3, `streaming from ${String(runsOn)}`)
  process.kill(pids[runsOn!]!, 'SIGKILL')
  const error = await ended
  t.equal((error as StreamCommandError).code, 'FST_ERR_CQRS_STREAM_OWNER_LOST', 'the page would show FST_ERR_CQRS_STREAM_OWNER_LOST')
  for (let tries = 0; !output.includes('the other instance goes on') && tries < 100; tries++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(output, `${runsOn!} exited (SIGKILL); the other instance goes on`)
  const health = await (await fetch(`http://127.0.0.1:${port}/health`)).json() as { instance: string }
  t.not(health.instance, runsOn, 'the survivor answers')
  child.kill('SIGTERM')
  const [code] = await exited
  t.equal(code, 0, 'exits cleanly')
})
