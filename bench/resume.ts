// Resumable streams: the time from a reconnect to its first replayed frame,
// and the memory a resumable stream's frame buffer costs.
//
//   node --expose-gc --import tsx bench/resume.ts [--quick]
//
// One process: a Fastify app with a resumable route and a node:http client
// over loopback. The memory figure compares streams that hold N frames in
// their buffer against the same streams without resume, in one run.
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import cqrsStream, { Request, Response, StreamingRequestHandler, type StreamContext } from '../src/index.js'

const quick = process.argv.includes('--quick')
const RECONNECTS = quick ? 20 : 300
const STREAMS = quick ? 50 : 1000
const FRAMES = 100

class Hold extends Request(Type.Object({ n: Type.Integer() })) {}
class OrderResult extends Response(Type.Object({
  orderId: Type.String(),
  status: Type.String(),
  itemsCount: Type.Integer(),
  processedAt: Type.String(),
})) {}

// Yields `n` ~130-byte results, then waits until aborted: a stream that
// stays open with its frames in the buffer.
class HoldHandler extends StreamingRequestHandler<Hold, OrderResult> {
  async * handle (command: Hold, { signal }: StreamContext): AsyncGenerator<OrderResult> {
    for (let i = 0; i < command.n; i++) {
      yield new OrderResult({ orderId: `order-${i}`, status: 'processed', itemsCount: 3, processedAt: '2026-11-26T05:00:00.000Z' })
    }
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
  }
}

const app = Fastify()
await app.register(cqrsStream, { requests: (map) => map.bind(Hold, HoldHandler), heartbeatMs: 0 })
app.streamRoute({ method: 'GET', url: '/resumable', request: Hold, response: OrderResult, resume: { windowMs: 60_000, maxBufferedFrames: 1000 } })
app.streamRoute({ method: 'GET', url: '/plain', request: Hold, response: OrderResult })
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as AddressInfo).port

interface Opened { destroy (): void, firstFrameMs: Promise<number>, frames: Promise<string> }

/** GET `path`; resolves the time to the first frame and the text once `frameCount` frames have arrived. */
function open (path: string, frameCount: number, headers: Record<string, string> = {}): Opened {
  const started = process.hrtime.bigint()
  let destroy = (): void => {}
  let onFirst: (ms: number) => void = () => {}
  const firstFrameMs = new Promise<number>((resolve) => { onFirst = resolve })
  const frames = new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = ''
      let seen = 0
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        if (body === '') onFirst(Number(process.hrtime.bigint() - started) / 1e6)
        body += chunk
        seen = body.split('\n\n').length - 1
        if (seen >= frameCount) resolve(body)
      })
      res.on('error', () => {})
    })
    req.on('error', reject)
    destroy = () => req.destroy()
    req.end()
  })
  return { destroy: () => destroy(), firstFrameMs, frames }
}

async function serverSawClose (): Promise<void> {
  for (;;) {
    const count = await new Promise<number>((resolve) => app.server.getConnections((_e, n) => resolve(n)))
    if (count === 0) return
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

// 1. Reconnect to first replayed frame: drop after the start frame, 10
// frames produced meanwhile, reconnect with the start frame's id.
const latencies: number[] = []
for (let i = 0; i < RECONNECTS; i++) {
  const first = open('/resumable?n=10', 11)
  const body = await first.frames
  const streamId = /"streamId":"([^"]+)"/.exec(body)![1]!
  first.destroy()
  await serverSawClose()
  const again = open('/resumable?n=10', 10, { 'last-event-id': `${streamId}:0` })
  latencies.push(await again.firstFrameMs)
  await again.frames
  again.destroy()
  await app.inject({ method: 'DELETE', url: `/resumable/${streamId}` })
  await serverSawClose()
}
console.log(`reconnect → first replayed frame (${RECONNECTS} reconnects, 10 frames replayed): ` +
  `p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms`)

// 2. Memory per open stream with FRAMES frames sent, with and without resume.
const gc = (globalThis as { gc?: () => void }).gc
async function heapPerStream (path: string): Promise<number> {
  gc?.()
  const before = process.memoryUsage().heapUsed
  const streams: Opened[] = []
  for (let i = 0; i < STREAMS; i++) streams.push(open(`${path}?n=${FRAMES}`, FRAMES + 1))
  await Promise.all(streams.map((stream) => stream.frames))
  gc?.()
  const after = process.memoryUsage().heapUsed
  for (const stream of streams) stream.destroy()
  await serverSawClose()
  return (after - before) / STREAMS
}
if (gc === undefined) console.log('(run with --expose-gc for steadier memory figures)')
const plain = await heapPerStream('/plain')
// Resumable streams stay open after the drop until cancelled; close them after measuring.
const resumable = await heapPerStream('/resumable')
console.log(`heap per open stream after ${FRAMES} frames (${STREAMS} streams): ` +
  `plain ${(plain / 1024).toFixed(1)} KiB, resumable ${(resumable / 1024).toFixed(1)} KiB, ` +
  `buffer ≈ ${((resumable - plain) / 1024).toFixed(1)} KiB (${((resumable - plain) / (FRAMES + 1)).toFixed(0)} B per kept frame)`)
await app.close()
