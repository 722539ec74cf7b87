// The reconnect storm (issue #15, item 6): STREAMS resumable streams over two
// instances that share Redis, behind the cluster demo's round-robin proxy.
// Once every stream runs, the proxy cuts every connection at once; each
// client reconnects through it as EventSource does (after the server's
// `retry`, 1000 ms, plus up to JITTER ms), with Last-Event-ID. Checked:
// every stream resumes, every frame arrives once and in order, every
// command ran once. Measured: time to resume (reconnect sent → 200 with its
// headers) and cut → resumed, p50/p99/max, and each instance's peak RSS.
// Prints one JSON line. Run by `npm run bench` (case storm), or alone:
//   node --import tsx bench/reconnect-storm.ts [--quick] [--streams N] [--jitter MS]   (REDIS_URL, default redis://127.0.0.1:6379)
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const option = (name: string, fallback: number): number => {
  const at = argv.indexOf(name)
  return at === -1 ? fallback : Number(argv[at + 1])
}
const STREAMS = option('--streams', quick ? 200 : 5_000)
const JITTER_MS = option('--jitter', 0)
// Each stream: a frame every MS ms, N of them; the cut comes once all have opened.
const N = quick ? 12 : 40
const MS = quick ? 250 : 500
const RETRY_MS = 1000
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const root = fileURLToPath(new URL('..', import.meta.url))
const children = new Set<ChildProcess>()
process.on('exit', () => { for (const child of children) child.kill('SIGKILL') })

/** Starts `node <args>` and resolves with the port of its `ready <port>` line. */
function start (args: string[]): Promise<{ port: number, child: ChildProcess }> {
  const child = spawn('sh', ['-c', 'ulimit -n 20000 2>/dev/null; exec "$0" "$@"', process.execPath, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  return new Promise((resolve, reject) => {
    let stdout = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      const ready = /ready (\d+)/.exec(stdout)
      if (ready !== null) resolve({ port: Number(ready[1]), child })
    })
    child.once('exit', (code) => { reject(new Error(`${args.join(' ')} exited (${String(code)}): ${stderr}`)) })
  })
}

async function getJson<T> (port: number, path: string, method = 'GET'): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method })
  return await res.json() as T
}

const pct = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN

/** One EventSource-like client of one stream: frame ids checked as they come, reconnects with Last-Event-ID. */
class StormClient {
  streamId = ''
  lastSeq = -1
  complete = false
  errors: string[] = []
  reconnects = 0
  // Of the first reconnect after the cut: when it was sent, and when its 200 came.
  reconnectAt = NaN
  resumedAt = NaN
  readonly #port: number
  readonly #done: () => void
  #buffer = ''
  #cut = false
  readonly opened: Promise<void>
  #onOpen!: () => void
  readonly finished: Promise<void>

  constructor (port: number) {
    this.#port = port
    this.opened = new Promise((resolve) => { this.#onOpen = resolve })
    let done!: () => void
    this.finished = new Promise((resolve) => { done = resolve })
    this.#done = done
    this.#connect()
  }

  /** The proxy is about to cut: the next close is the storm's. */
  expectCut (): void { this.#cut = true }

  #connect (): void {
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    const resuming = this.lastSeq >= 0
    if (resuming) headers['last-event-id'] = `${this.streamId}:${this.lastSeq}`
    const sentAt = performance.now()
    const req = http.get({ host: '127.0.0.1', port: this.#port, path: `/storm?n=${N}&ms=${MS}`, agent: false, headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume()
        if (res.statusCode === 204 && this.complete) { this.#done(); return }
        this.#retry(`status ${String(res.statusCode)}`)
        return
      }
      if (resuming && Number.isNaN(this.resumedAt) && !this.#cut) {
        this.reconnectAt = sentAt
        this.resumedAt = performance.now()
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { this.#push(chunk) })
      res.on('close', () => {
        if (this.complete) this.#done()
        else this.#retry(undefined)
      })
    })
    req.on('error', (error) => { this.#retry(error.message) })
  }

  #retry (why: string | undefined): void {
    if (why !== undefined && !this.#cut) this.errors.push(why)
    this.#cut = false
    this.reconnects++
    setTimeout(() => { this.#connect() }, RETRY_MS + Math.random() * JITTER_MS)
  }

  #push (chunk: string): void {
    this.#buffer += chunk
    let end: number
    while ((end = this.#buffer.indexOf('\n\n')) !== -1) {
      const block = this.#buffer.slice(0, end)
      this.#buffer = this.#buffer.slice(end + 2)
      const id = /^id: (.+):(\d+)$/m.exec(block)
      if (id === null) continue
      const seq = Number(id[2])
      if (seq === 0) {
        this.streamId = id[1]!
        this.#onOpen()
      }
      if (seq !== this.lastSeq + 1) this.errors.push(`frame ${seq} after ${this.lastSeq}`)
      this.lastSeq = seq
      if (block.includes('"type":"complete"')) this.complete = true
    }
  }
}

async function main (): Promise<void> {
  const probe = new Redis(REDIS_URL, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await probe.ping()
  } catch {
    console.log(JSON.stringify({ skipped: `Redis at ${REDIS_URL} does not answer` }))
    return
  }
  const keyPrefix = `bench:storm:${randomUUID()}:`
  const lib = process.env.BENCH_LIB === 'src' ? ['--import', 'tsx'] : []
  const instances = [
    await start([...lib, 'bench/storm/instance.mjs', REDIS_URL, keyPrefix]),
    await start([...lib, 'bench/storm/instance.mjs', REDIS_URL, keyPrefix]),
  ]
  const proxy = await start(['--import', 'tsx', 'bench/storm/proxy.ts', ...instances.map((instance) => String(instance.port))])
  const clients: StormClient[] = []
  const t0 = performance.now()
  // In batches: thousands of SYNs at once would measure the accept queue, not the storm.
  for (let opened = 0; opened < STREAMS; opened += 250) {
    const batch = Array.from({ length: Math.min(250, STREAMS - opened) }, () => new StormClient(proxy.port))
    clients.push(...batch)
    await Promise.all(batch.map((client) => client.opened))
  }
  const openSeconds = (performance.now() - t0) / 1000
  for (const client of clients) client.expectCut()
  type Cpu = { user: number, system: number }
  const cpus = (): Promise<Cpu[]> => Promise.all(instances.map((instance) => getJson<Cpu>(instance.port, '/_cpu')))
  const cpuBefore = await cpus()
  const cutAt = performance.now()
  const { cut } = await getJson<{ cut: number }>(proxy.port, '/_proxy/cut', 'POST')
  // The instances' CPU from the cut until every client is back (their streams' live frames included).
  let allBack!: () => void
  const back = new Promise<void>((resolve) => { allBack = resolve })
  const poll = setInterval(() => { if (clients.every((client) => !Number.isNaN(client.resumedAt))) allBack() }, 10)
  await back
  clearInterval(poll)
  const backAt = performance.now()
  const cpuAfter = await cpus()
  const stormCpuMs = cpuAfter.map((after, i) => (after.user + after.system - cpuBefore[i]!.user - cpuBefore[i]!.system) / 1000)
  await Promise.all(clients.map((client) => client.finished))
  const stats = await Promise.all(instances.map((instance) => getJson<{ runs: Record<string, number>, peakRssMB: number }>(instance.port, '/_stats')))
  const runs = new Map<string, number>()
  for (const stat of stats) for (const [id, count] of Object.entries(stat.runs)) runs.set(id, (runs.get(id) ?? 0) + count)
  const resumed = clients.filter((client) => !Number.isNaN(client.resumedAt))
  const toResume = resumed.map((client) => client.resumedAt - client.reconnectAt).sort((a, b) => a - b)
  const cutToResumed = resumed.map((client) => client.resumedAt - cutAt).sort((a, b) => a - b)
  const frameErrors = clients.reduce((sum, client) => sum + client.errors.length, 0)
  const result = {
    streams: STREAMS,
    framesPerStream: N,
    jitterMs: JITTER_MS,
    openSeconds,
    cut,
    resumed: resumed.length,
    complete: clients.filter((client) => client.complete && client.lastSeq === N + 1).length,
    frameErrors,
    firstErrors: clients.flatMap((client) => client.errors).slice(0, 5),
    ranOnce: [...runs.values()].filter((count) => count === 1).length,
    ranMoreThanOnce: [...runs.values()].filter((count) => count > 1).length,
    reconnects: clients.reduce((sum, client) => sum + client.reconnects, 0),
    toResumeMs: { p50: pct(toResume, 0.5), p99: pct(toResume, 0.99), max: toResume.at(-1) ?? NaN },
    cutToResumedMs: { p50: pct(cutToResumed, 0.5), p99: pct(cutToResumed, 0.99), max: cutToResumed.at(-1) ?? NaN },
    peakRssMB: stats.map((stat) => stat.peakRssMB),
    stormSeconds: (backAt - cutAt) / 1000,
    // Each instance's CPU over the storm, per stream resumed anywhere.
    instanceCpuUsPerResume: stormCpuMs.map((ms) => ms * 1000 / STREAMS),
    errors: 0,
  }
  result.errors = (STREAMS - result.complete) + (STREAMS - result.resumed) + frameErrors + result.ranMoreThanOnce + (STREAMS - result.ranOnce)
  for (const { child } of [...instances, proxy]) child.kill('SIGTERM')
  // The streams' keys expire windowMs after their end; take them now.
  const keys = await probe.keys(`${keyPrefix}*`)
  for (let i = 0; i < keys.length; i += 500) await probe.del(...keys.slice(i, i + 500))
  probe.disconnect()
  console.log(JSON.stringify(result))
}

await main()
