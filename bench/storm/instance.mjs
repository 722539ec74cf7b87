// One instance of the reconnect-storm bench: a Fastify app whose resumable
// GET /storm?n=N&ms=MS yields a frame every MS ms, N times, with its frames
// in Redis (RedisStreamStore). GET /_stats reports how often each stream's
// handler ran and this process's peak RSS, sampled every 50 ms; GET /_cpu its
// CPU time so far (process.cpuUsage()).
// usage: node bench/storm/instance.mjs <redis url> <key prefix>   (prints `ready <port>`)
import { setTimeout as delay } from 'node:timers/promises'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'

const fromSource = process.env.BENCH_LIB === 'src'
const lib = await import(fromSource ? '../../src/index.ts' : '../../dist/index.js')
const { RedisStreamStore } = await import(fromSource ? '../../src/redis/index.ts' : '../../dist/redis/index.js')
const { default: fastifyCqrsStream, Request, Response, StreamingRequestHandler } = lib
const [redis, keyPrefix] = process.argv.slice(2)

class StormCommand extends Request(Type.Object({ n: Type.Integer({ minimum: 0 }), ms: Type.Integer({ minimum: 0 }) })) {}
class Tick extends Response(Type.Object({ i: Type.Integer() })) {}

const runs = new Map()

class StormHandler extends StreamingRequestHandler {
  async * handle (command, { signal, streamId }) {
    runs.set(streamId, (runs.get(streamId) ?? 0) + 1)
    for (let i = 0; i < command.n; i++) {
      await delay(command.ms, undefined, { signal })
      yield new Tick({ i })
    }
  }
}

let peakRss = process.memoryUsage.rss()
setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage.rss()) }, 50).unref()

const streamStore = new RedisStreamStore({ redis, keyPrefix })
const app = Fastify({ logger: false })
await app.register(fastifyCqrsStream, {
  requests: (map) => map.bind(StormCommand, StormHandler),
  streamStore,
  limits: { maxOpenStreams: 20_000 },
})
// A window longer than the storm: every stream waits for its client.
app.streamRoute({ method: 'GET', url: '/storm', request: StormCommand, response: Tick, resume: { windowMs: 60_000, maxBufferedFrames: 1_000 } })
app.get('/_cpu', async () => process.cpuUsage())
app.get('/_stats', async () => ({ runs: Object.fromEntries(runs), peakRssMB: peakRss / 2 ** 20, rssMB: process.memoryUsage.rss() / 2 ** 20 }))
app.addHook('onClose', () => streamStore.close())
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })

await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
console.log(`ready ${app.server.address().port}`)
