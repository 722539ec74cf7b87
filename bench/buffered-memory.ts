// The memory that resumable streams hold for clients that went away, with
// and without `limits.maxBufferedBytes` (issue #12): 1,000 streams whose
// clients leave after the start frame, whose handlers then send 30 frames
// of 10 KB each, and wait. Without the limit every stream keeps its 300 KB
// until its window (60 s here) runs out; with the default 256 KiB, each is
// aborted once it has sent that much while its client is away.
//
//   node --expose-gc --import tsx bench/buffered-memory.ts [--quick]
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import cqrsStream, { Request, Response, StreamingRequestHandler, type StreamContext, type StreamLimits } from '../src/index.js'

const quick = process.argv.includes('--quick')
const STREAMS = quick ? 50 : 1000
const FRAMES = 30
const FRAME_SIZE = 10_000

class Fill extends Request(Type.Object({ n: Type.Integer() })) {}
class Chunk extends Response(Type.Object({ i: Type.Integer(), pad: Type.String() })) {}

let go!: () => void
let started = new Promise<void>((resolve) => { go = resolve })

class FillHandler extends StreamingRequestHandler<Fill, Chunk> {
  async * handle (command: Fill, { signal }: StreamContext): AsyncGenerator<Chunk> {
    await started
    // A new string per frame, as real results are.
    for (let i = 0; i < command.n && !signal.aborted; i++) yield new Chunk({ i, pad: String(i).padEnd(FRAME_SIZE, 'x') })
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
  }
}

function openAndLeave (port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/fill?n=${FRAMES}`, agent: false, headers: { accept: 'text/event-stream' } })
    req.on('error', reject)
    req.on('response', (res) => {
      res.once('data', () => {
        res.destroy()
        resolve()
      })
    })
    req.end()
  })
}

const gc = (globalThis as { gc?: () => void }).gc
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    gc?.()
  }
}

async function run (limits: StreamLimits | undefined): Promise<{ heapMB: number, rssMB: number, open: number }> {
  started = new Promise<void>((resolve) => { go = resolve })
  const app = Fastify()
  await app.register(cqrsStream, { requests: (map) => map.bind(Fill, FillHandler), heartbeatMs: 0, limits })
  app.streamRoute({ method: 'GET', url: '/fill', request: Fill, resume: { windowMs: 60_000 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  await settle()
  const heap0 = process.memoryUsage().heapUsed
  const rss0 = process.memoryUsage().rss
  for (let i = 0; i < STREAMS; i += 100) await Promise.all(Array.from({ length: Math.min(100, STREAMS - i) }, () => openAndLeave(port)))
  await new Promise((resolve) => setTimeout(resolve, 300))
  go()
  await settle()
  const heapMB = (process.memoryUsage().heapUsed - heap0) / 2 ** 20
  const rssMB = (process.memoryUsage().rss - rss0) / 2 ** 20
  const open = app.streamStats().openStreams
  await app.close()
  return { heapMB, rssMB, open }
}

if (gc === undefined) console.log('(run with --expose-gc for steadier figures)')
const without = await run({ maxBufferedBytes: Infinity })
const withLimit = await run(undefined)
const line = (label: string, r: { heapMB: number, rssMB: number, open: number }): string =>
  `${label.padEnd(34)} heap +${r.heapMB.toFixed(1)} MB, RSS +${r.rssMB.toFixed(1)} MB, streams still open: ${r.open}`
console.log(`${STREAMS} resumable streams, clients gone, ${FRAMES} frames of ${FRAME_SIZE / 1000} KB sent each while away:`)
console.log(line('  maxBufferedBytes: Infinity', without))
console.log(line('  maxBufferedBytes: 256 KiB (default)', withLimit))
