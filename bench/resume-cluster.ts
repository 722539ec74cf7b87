// Resume across instances through Redis: two Fastify apps (A and B) share a
// RedisStreamStore. Measured, over loopback and the machine's Redis:
//   - reconnect to first replayed frame, on the owner A and on B (from Redis);
//   - live frame latency: A's handler yields, B's client receives it;
//   - cancel latency: DELETE sent to B until A's handler is aborted.
//
//   node --import tsx bench/resume-cluster.ts [--quick]    (REDIS_URL, default redis://127.0.0.1:6379)
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { Redis } from 'ioredis'
import cqrsStream, { Request, Response, StreamingRequestHandler, type StreamContext } from '../src/index.js'
import { RedisStreamStore } from '../src/redis/index.js'

const quick = process.argv.includes('--quick')
const ROUNDS = quick ? 20 : 200
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `bench:${randomUUID()}:`

class Hold extends Request(Type.Object({ n: Type.Integer() })) {}
class OrderResult extends Response(Type.Object({
  orderId: Type.String(), status: Type.String(), itemsCount: Type.Integer(), processedAt: Type.String(),
})) {}

const result = (i: number): OrderResult =>
  new OrderResult({ orderId: `order-${i}`, status: 'processed', itemsCount: 3, processedAt: '2026-11-26T05:00:00.000Z' })

// The bench releases one more frame at a time and times it; aborts are timed for cancels.
let release: (() => void) | undefined
let released = 0
let onAbort: (() => void) | undefined

class HoldHandler extends StreamingRequestHandler<Hold, OrderResult> {
  async * handle (command: Hold, { signal }: StreamContext): AsyncGenerator<OrderResult> {
    signal.addEventListener('abort', () => { onAbort?.() }, { once: true })
    for (let i = 0; i < command.n; i++) yield result(i)
    for (let i = command.n; !signal.aborted; i++) {
      await new Promise<void>((resolve) => {
        release = resolve
        signal.addEventListener('abort', () => resolve(), { once: true })
      })
      if (signal.aborted) return
      released = performance.now()
      yield result(i)
    }
  }
}

async function instance (): Promise<{ app: FastifyInstance, store: RedisStreamStore, port: number }> {
  const store = new RedisStreamStore({ redis: REDIS_URL, keyPrefix: prefix })
  const app = Fastify()
  await app.register(cqrsStream, { requests: (map) => map.bind(Hold, HoldHandler), heartbeatMs: 0, streamStore: store })
  app.streamRoute({ method: 'GET', url: '/hold', request: Hold, response: OrderResult, resume: { windowMs: 60_000 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, store, port: (app.server.address() as AddressInfo).port }
}

interface Opened { destroy (): void, firstFrameMs: Promise<number>, frameCount (): number, nextFrame (): Promise<number>, body (): string }

function open (port: number, path: string, headers: Record<string, string> = {}): Opened {
  const started = performance.now()
  let body = ''
  let onFirst: (ms: number) => void = () => {}
  const firstFrameMs = new Promise<number>((resolve) => { onFirst = resolve })
  let waiter: ((at: number) => void) | undefined
  const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      const now = performance.now()
      if (body === '') onFirst(now - started)
      body += chunk
      const wake = waiter
      waiter = undefined
      wake?.(now)
    })
    res.on('error', () => {})
  })
  req.on('error', () => {})
  req.end()
  return {
    destroy: () => { req.destroy() },
    firstFrameMs,
    frameCount: () => body.split('\n\n').length - 1,
    nextFrame: () => new Promise((resolve) => { waiter = resolve }),
    body: () => body,
  }
}

async function until (predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 1))
}

const percentile = (values: number[], p: number): number => [...values].sort((x, y) => x - y)[Math.min(values.length - 1, Math.floor(p * values.length))]!
const report = (label: string, values: number[]): void => {
  console.log(`${label}: p50 ${percentile(values, 0.5).toFixed(2)} ms, p99 ${percentile(values, 0.99).toFixed(2)} ms (${values.length} samples)`)
}

const a = await instance()
const b = await instance()
const sameInstance: number[] = []
const crossInstance: number[] = []
const live: number[] = []
const cancels: number[] = []

for (let round = 0; round < ROUNDS; round++) {
  const first = open(a.port, '/hold?n=10')
  await until(() => first.frameCount() === 11)
  const streamId = /"streamId":"([^"]+)"/.exec(first.body())![1]!
  first.destroy()
  // Both reconnects replay the same 10 frames; the one on A is taken back by B's.
  const local = open(a.port, '/hold?n=10', { 'last-event-id': `${streamId}:0` })
  sameInstance.push(await local.firstFrameMs)
  await until(() => local.frameCount() === 10)
  local.destroy()
  const remote = open(b.port, '/hold?n=10', { 'last-event-id': `${streamId}:0` })
  crossInstance.push(await remote.firstFrameMs)
  await until(() => remote.frameCount() === 10)
  // Live frames: A yields, B's client gets it through Redis.
  for (let i = 0; i < 5; i++) {
    await until(() => release !== undefined)
    const arrived = remote.nextFrame()
    const go = release!
    release = undefined
    go()
    live.push(await arrived - released)
  }
  const aborted = new Promise<number>((resolve) => { onAbort = () => resolve(performance.now()) })
  const sent = performance.now()
  await fetch(`http://127.0.0.1:${b.port}/hold/${streamId}`, { method: 'DELETE' })
  cancels.push(await aborted - sent)
  onAbort = undefined
  release = undefined
  remote.destroy()
}

report('reconnect → first replayed frame, on the owner (10 frames)', sameInstance)
report('reconnect → first replayed frame, on another instance, from Redis (10 frames)', crossInstance)
report('live frame, owner yield → client of another instance', live)
report('cancel: DELETE to another instance → handler aborted on the owner', cancels)

await a.app.close()
await b.app.close()
await a.store.close()
await b.store.close()
const redis = new Redis(REDIS_URL)
const keys = await redis.keys(`${prefix}*`)
if (keys.length > 0) await redis.del(...keys)
await redis.quit()
