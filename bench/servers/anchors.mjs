// The anchors our plugin is measured against, each streaming the same workload
// (start, N progress frames of the same ~130-byte result, complete) from an
// async generator, after ../../shared/reference/anchor-bench/server.mjs.
// usage: node --expose-gc bench/servers/anchors.mjs VARIANT   (prints `ready <port>`)
//   raw          node:http, one res.write per frame, waits for drain
//   raw-batched  node:http, frames joined into ~16 KiB writes (the practical limit)
//   fastify-sse  Fastify + @fastify/sse 0.6.0, reply.sse.send(asyncIterable)
//   fastify-json Fastify, a plain JSON route returning one result (per-stream setup anchor)
// Plain JavaScript: @fastify/sse's type augmentation of FastifyReply must not
// leak into the project's typecheck.
import http from 'node:http'
import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { cpuProbe, memProbe } from '../lib/probes.mjs'
import { intParam, resultOf, resultSchema, stampedResult } from '../lib/workload.mjs'

const variant = process.argv[2]
const headers = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' }
const frame = (obj) => `data: ${JSON.stringify(obj)}\n\n`

async function * results (n) {
  for (let i = 0; i < n; i++) yield resultOf(i)
}
async function * liveResults (n, ms) {
  for (let i = 0; i < n; i++) {
    await delay(ms)
    yield stampedResult()
  }
}
async function * frames (items) {
  yield frame({ type: 'start', message: 'Processing...' })
  for await (const r of items) yield frame({ type: 'progress', data: r })
  yield frame({ type: 'complete' })
}

async function writeAll (res, items) {
  for await (const f of frames(items)) {
    if (res.destroyed) return
    if (!res.write(f)) await Promise.race([once(res, 'drain'), once(res, 'close')])
  }
  res.end()
}

async function writeBatched (res, items) {
  let buf = ''
  for await (const f of frames(items)) {
    buf += f
    if (buf.length >= 16384) {
      if (res.destroyed) return
      const ok = res.write(buf)
      buf = ''
      if (!ok) await Promise.race([once(res, 'drain'), once(res, 'close')])
    }
  }
  res.end(buf)
}

function probes (req, res) {
  if (req.url === '/cpu') { res.end(JSON.stringify(cpuProbe())); return true }
  if (req.url.startsWith('/mem')) { res.end(JSON.stringify(memProbe(req.url.includes('gc=1')))); return true }
  return false
}

// A normal exit, so `node --cpu-prof` writes its profile when the harness stops us.
process.on('SIGTERM', () => { process.exit(0) })

let server
if (variant === 'raw' || variant === 'raw-batched') {
  const write = variant === 'raw' ? writeAll : writeBatched
  server = http.createServer((req, res) => {
    if (probes(req, res)) return
    res.writeHead(200, headers)
    if (req.url.startsWith('/live')) write(res, liveResults(intParam(req.url, 'n', 1), intParam(req.url, 'ms', 100)))
    else write(res, results(intParam(req.url, 'n', 1000)))
  })
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
  await once(server, 'listening')
} else {
  const Fastify = (await import('fastify')).default
  const app = Fastify({ logger: false })
  app.get('/cpu', async () => cpuProbe())
  app.get('/mem', async (request) => memProbe(request.query.gc === '1'))
  if (variant === 'fastify-sse') {
    await app.register((await import('@fastify/sse')).default, { heartbeatInterval: 15000 })
    // As in the reference harness: no heartbeat on a stream that is busy anyway.
    app.get('/stream', { sse: { kind: 'only', heartbeat: false } }, async (request, reply) => {
      const n = intParam(request.url, 'n', 1000)
      async function * msgs () {
        yield { data: { type: 'start', message: 'Processing...' } }
        for await (const r of results(n)) yield { data: { type: 'progress', data: r } }
        yield { data: { type: 'complete' } }
      }
      await reply.sse.send(msgs())
    })
    // An open stream with nothing to say: the start message, then a wait for the client to leave; heartbeat on.
    app.get('/idle', { sse: { kind: 'only' } }, async (request, reply) => {
      async function * msgs () {
        yield { data: { type: 'start', message: 'Processing...' } }
        await once(reply.raw, 'close')
      }
      await reply.sse.send(msgs())
    })
  } else if (variant === 'fastify-json') {
    app.get('/json', {
      schema: {
        querystring: { type: 'object', properties: { n: { type: 'integer', minimum: 0 } }, required: ['n'] },
        response: { 200: resultSchema },
      },
    }, async () => resultOf(0))
  } else {
    throw new Error(`unknown variant ${variant}`)
  }
  await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
  server = app.server
}
console.log(`ready ${server.address().port}`)
