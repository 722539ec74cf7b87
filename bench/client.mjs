// The load side of one measurement, run in its own process so its sockets,
// memory and event loop never mix with another's. Prints one JSON line.
// usage: node bench/client.mjs '<json: { mode, port, ... }>'
//   stream  C concurrent GET /stream?n=N, ROUNDS times after a warm-up round: frames/s, server CPU µs/frame, errors
//   slow    one GET /stream?n=N whose reader pauses PAUSEMS after its first chunk: server memory while stalled
//   idle    STREAMS open GET /idle streams (each has received its start frame): server RSS and heap per stream
//   live    STREAMS concurrent GET /live?n=N&ms=MS: p50/p99 of the handler's yield → this process's receipt
//           (with MEM: also the server's RSS and heap per stream halfway through, after a GC)
//   load    CONNECTIONS undici connections requesting PATH in a closed loop for SECONDS: requests/s
//           (with RATE: at most RATE requests/s, paced, for server CPU per request at the same load)
import http from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import { Pool } from 'undici'
import { FrameCounter, OrderIdScanner } from './lib/frame-counter.mjs'

const args = JSON.parse(process.argv[2] ?? '{}')
const base = `http://127.0.0.1:${args.port}`

async function getJson (path) {
  const res = await fetch(base + path)
  return await res.json()
}
const cpuOf = () => getJson('/cpu')
const cpuUs = (a, b) => (b.user - a.user) + (b.system - a.system)
const memOf = (collect) => getJson(`/mem${collect ? '?gc=1' : ''}`)
const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9

/** One SSE GET read to its end; never rejects (a failure is `ok: false`). */
function readStream (path, agent, expectedFrames) {
  return new Promise((resolve) => {
    const counter = new FrameCounter()
    const fail = () => { resolve({ frames: counter.frames, ok: false }) }
    http.get({ host: '127.0.0.1', port: args.port, path, agent, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) { res.resume(); fail(); return }
      res.setEncoding('utf8')
      res.on('data', (chunk) => { counter.push(chunk) })
      res.on('end', () => {
        resolve({ frames: counter.frames, ok: counter.frames === expectedFrames && counter.completes === 1 })
      })
      res.on('error', fail)
      res.on('aborted', fail)
    }).on('error', fail)
  })
}

async function streamMode () {
  const n = args.n
  const c = args.concurrency ?? 1
  const rounds = args.rounds ?? 1
  const agent = new http.Agent({ keepAlive: true, maxSockets: c })
  const round = async () => {
    const got = await Promise.all(Array.from({ length: c }, () => readStream(`/stream?n=${n}`, agent, n + 2)))
    return { frames: got.reduce((sum, o) => sum + o.frames, 0), errors: got.filter((o) => !o.ok).length }
  }
  // Warm-up: JIT, and (for many streams) the keep-alive connections, opened before the clock starts.
  const warm = await round()
  const c0 = await cpuOf()
  const t0 = process.hrtime.bigint()
  let frames = 0
  let errors = warm.errors
  for (let r = 0; r < rounds; r++) {
    const got = await round()
    frames += got.frames
    errors += got.errors
  }
  const s = seconds(t0)
  const c1 = await cpuOf()
  agent.destroy()
  return { frames, errors, seconds: s, framesPerSec: frames / s, serverCpuUsPerFrame: cpuUs(c0, c1) / frames }
}

async function slowMode () {
  const n = args.n
  const pauseMs = args.pauseMs ?? 3000
  const pollMs = args.pollMs ?? 100
  const before = await memOf(true)
  const agent = new http.Agent({ keepAlive: false })
  const samples = []
  let stalled
  const outcome = await new Promise((resolve) => {
    const counter = new FrameCounter()
    const fail = () => { resolve({ frames: counter.frames, ok: false, bytes: counter.bytes }) }
    http.get({ host: '127.0.0.1', port: args.port, path: `/stream?n=${n}`, agent }, (res) => {
      if (res.statusCode !== 200) { res.resume(); fail(); return }
      res.setEncoding('utf8')
      res.on('data', (chunk) => { counter.push(chunk) })
      res.on('end', () => { resolve({ frames: counter.frames, ok: counter.frames === n + 2 && counter.completes === 1, bytes: counter.bytes }) })
      res.on('error', fail)
      res.once('data', () => {
        res.pause()
        const t0 = Date.now()
        const poll = async () => {
          while (Date.now() - t0 < pauseMs) {
            samples.push(await memOf(false))
            await delay(pollMs)
          }
          stalled = await memOf(true)
          res.resume()
        }
        poll().catch(fail)
      })
    }).on('error', fail)
  })
  const mb = (bytes) => bytes / 2 ** 20
  const peakRss = Math.max(...samples.map((m) => m.rss))
  const peakHeap = Math.max(...samples.map((m) => m.heapUsed + m.external))
  return {
    frames: outcome.frames,
    errors: outcome.ok ? 0 : 1,
    streamMB: mb(outcome.bytes),
    peakRssGrowthMB: mb(peakRss - before.rss),
    peakHeapGrowthMB: mb(peakHeap - before.heapUsed - before.external),
    stalledLiveHeapGrowthMB: stalled === undefined ? NaN : mb(stalled.heapUsed + stalled.external - before.heapUsed - before.external),
    samples: samples.length,
  }
}

async function idleMode () {
  const streams = args.streams
  const batch = args.batch ?? 200
  const before = await memOf(true)
  const requests = []
  let errors = 0
  const t0 = process.hrtime.bigint()
  // In batches: a burst of thousands of SYNs would only measure the accept queue.
  for (let opened = 0; opened < streams; opened += batch) {
    const size = Math.min(batch, streams - opened)
    await Promise.all(Array.from({ length: size }, () => new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: args.port, path: '/idle', agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
        res.setEncoding('utf8')
        let seen = ''
        const onData = (chunk) => {
          seen += chunk
          if (seen.includes('data:')) { res.off('data', onData); resolve() }
        }
        res.on('data', onData)
        res.on('end', () => { errors++; resolve() })
      })
      req.on('error', () => { errors++; resolve() })
      requests.push(req)
    })))
  }
  const openSeconds = seconds(t0)
  await delay(500)
  const after = await memOf(true)
  for (const req of requests) req.destroy()
  await delay(200)
  return {
    streams,
    errors,
    openSeconds,
    rssPerStreamKB: (after.rss - before.rss) / streams / 1024,
    heapPerStreamKB: (after.heapUsed - before.heapUsed) / streams / 1024,
    externalPerStreamKB: (after.external - before.external) / streams / 1024,
  }
}

async function liveMode () {
  const streams = args.streams
  const n = args.n
  const ms = args.ms ?? 100
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity })
  const latencies = new Float64Array(streams * n)
  let count = 0
  let errors = 0
  const before = args.mem ? await memOf(true) : undefined
  const c0 = await cpuOf()
  const t0 = process.hrtime.bigint()
  // Halfway: every stream has opened (the last one ms after the first) and none has ended.
  const halfway = before === undefined ? undefined : delay(n * ms / 2).then(() => memOf(true))
  // Stream k opens k·ms/streams after the first, so the streams' ticks are
  // spread evenly over one period, as independent clients' would be, and no
  // server gets its timers lined up into bursts by how fast it accepted them.
  await Promise.all(Array.from({ length: streams }, (_, k) => new Promise((resolve) => {
    setTimeout(resolve, k * ms / streams)
  }).then(() => new Promise((resolve) => {
    const scanner = new OrderIdScanner()
    const counter = new FrameCounter()
    const onItem = (orderId) => {
      const sent = BigInt(orderId.slice(6))
      if (count < latencies.length) latencies[count++] = Number(process.hrtime.bigint() - sent) / 1e6
    }
    const fail = () => { errors++; resolve() }
    http.get({ host: '127.0.0.1', port: args.port, path: `/live?n=${n}&ms=${ms}`, agent, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) { res.resume(); fail(); return }
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        counter.push(chunk)
        scanner.push(chunk, onItem)
      })
      res.on('end', () => {
        if (counter.frames !== n + 2 || counter.completes !== 1) errors++
        resolve()
      })
      res.on('error', fail)
    }).on('error', fail)
  }))))
  const s = seconds(t0)
  const c1 = await cpuOf()
  const mid = await halfway
  const sorted = latencies.subarray(0, count).sort()
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN
  return {
    items: count,
    errors,
    seconds: s,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    serverCpuUsPerFrame: cpuUs(c0, c1) / (count + 2 * streams),
    ...(mid === undefined
      ? {}
      : { rssPerStreamKB: (mid.rss - before.rss) / streams / 1024, heapPerStreamKB: (mid.heapUsed - before.heapUsed) / streams / 1024, heapTotalPerStreamKB: (mid.heapTotal - before.heapTotal) / streams / 1024, peakRssMB: mid.rss / 2 ** 20 }),
  }
}

async function loadMode () {
  const path = args.path
  const expect = args.expect
  const connections = args.connections ?? 16
  const pool = new Pool(base, { connections, pipelining: 1 })
  const state = { stop: false }
  let done = 0
  let errors = 0
  // RATE: requests start at that many per second at most (open loop while
  // the server keeps up), so two servers are compared at the same load.
  const interval = args.rate === undefined ? 0 : 1000 / args.rate
  let slot = 0
  const worker = async () => {
    while (!state.stop) {
      if (interval > 0) {
        slot = Math.max(slot + interval, performance.now() - interval)
        const wait = slot - performance.now()
        if (wait > 0) await delay(wait)
        if (state.stop) break
      }
      try {
        const { statusCode, body } = await pool.request({ path, method: 'GET', headers: { accept: 'text/event-stream, application/json' } })
        const text = await body.text() // an SSE response is read until it ends
        if (statusCode === 200 && text.includes(expect)) done++
        else errors++
      } catch {
        errors++
      }
    }
  }
  const run = async (s) => {
    state.stop = false
    const workers = Array.from({ length: connections }, worker)
    await delay(s * 1000)
    state.stop = true
    await Promise.all(workers)
  }
  await run(args.warmupSeconds ?? 1)
  done = 0
  const warmErrors = errors
  const c0 = await cpuOf()
  const t0 = process.hrtime.bigint()
  await run(args.seconds ?? 3)
  const s = seconds(t0)
  const c1 = await cpuOf()
  await pool.close()
  return { requests: done, errors, warmupErrors: warmErrors, seconds: s, requestsPerSec: done / s, serverCpuUsPerRequest: cpuUs(c0, c1) / done }
}

const modes = { stream: streamMode, slow: slowMode, idle: idleMode, live: liveMode, load: loadMode }
const result = await modes[args.mode]()
console.log(JSON.stringify(result))
