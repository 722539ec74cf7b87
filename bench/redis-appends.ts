// One resumable stream of 50,000 frames as fast as a loopback client takes
// them, its frames kept in the in-memory store or in Redis (issue #15:
// batched appends). Measured in one process, the variants in turns: frames/s
// and the process's CPU time per frame (server and client share it; the
// client's share is the same for both).
//
//   node --import tsx bench/redis-appends.ts [--quick]    (REDIS_URL, default redis://127.0.0.1:6379)
import { randomUUID } from 'node:crypto'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import cqrsStream, { InMemoryStreamStore, Request, Response, StreamingRequestHandler, type StreamStore } from '../src/index.js'
import { RedisStreamStore } from '../src/redis/index.js'

const quick = process.argv.includes('--quick')
const FRAMES = quick ? 5_000 : 50_000
const REPS = quick ? 1 : 5
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `bench:${randomUUID()}:`

class Run extends Request(Type.Object({ n: Type.Integer() })) {}
class OrderResult extends Response(Type.Object({
  orderId: Type.String(), status: Type.String(), itemsCount: Type.Integer(), processedAt: Type.String(),
})) {}

class RunHandler extends StreamingRequestHandler<Run, OrderResult> {
  async * handle (command: Run): AsyncGenerator<OrderResult> {
    for (let i = 0; i < command.n; i++) yield new OrderResult({ orderId: `order-${i}`, status: 'processed', itemsCount: 3, processedAt: '2026-11-26T05:00:00.000Z' })
  }
}

function readAll (port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/run?n=${FRAMES}`, agent: false, headers: { accept: 'text/event-stream' } })
    req.on('error', reject)
    req.on('response', (res) => {
      let frames = 0
      let tail = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const text = tail + chunk
        const parts = text.split('\n\n')
        tail = parts.pop()!
        frames += parts.length
      })
      res.on('end', () => resolve(frames))
    })
    req.end()
  })
}

async function once (store: StreamStore): Promise<{ framesPerSec: number, cpuUsPerFrame: number }> {
  const app = Fastify()
  await app.register(cqrsStream, { requests: (map) => map.bind(Run, RunHandler), heartbeatMs: 0, streamStore: store })
  app.streamRoute({ method: 'GET', url: '/run', request: Run, resume: { maxBufferedFrames: 1000 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  const frames = await readAll(port)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = process.cpuUsage(cpu0)
  if (frames !== FRAMES + 2) throw new Error(`got ${frames} frames, not ${FRAMES + 2}`)
  await app.close()
  return { framesPerSec: frames / seconds, cpuUsPerFrame: (cpu.user + cpu.system) / frames }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const results: Record<string, Array<{ framesPerSec: number, cpuUsPerFrame: number }>> = { memory: [], redis: [] }
const redisStore = new RedisStreamStore({ redis: REDIS_URL, keyPrefix: prefix })
await once(new InMemoryStreamStore())
await once(redisStore)
for (let rep = 0; rep < REPS; rep++) {
  for (const variant of rep % 2 === 0 ? ['memory', 'redis'] : ['redis', 'memory']) {
    results[variant]!.push(await once(variant === 'memory' ? new InMemoryStreamStore() : redisStore))
  }
}
await redisStore.close()
const cleanup = new Redis(REDIS_URL)
const keys = await cleanup.keys(`${prefix}*`)
if (keys.length > 0) await cleanup.del(...keys)
await cleanup.quit()
const fps = (v: string): number => median(results[v]!.map((r) => r.framesPerSec))
const cpu = (v: string): number => median(results[v]!.map((r) => r.cpuUsPerFrame))
console.log(`one resumable stream of ${FRAMES.toLocaleString('en-US')} frames, median of ${REPS}:`)
for (const v of ['memory', 'redis']) console.log(`  ${v.padEnd(8)} ${Math.round(fps(v)).toLocaleString('en-US').padStart(8)} frames/s   ${cpu(v).toFixed(2)} µs CPU/frame`)
console.log(`  Redis ÷ in-memory: frames/s ${(fps('redis') / fps('memory')).toFixed(3)} (target ≥ 0.5), CPU/frame ${(cpu('redis') / cpu('memory')).toFixed(3)}`)
