// `npm run bench`: fastify-cqrs-stream against its anchors, every figure
// measured in the same run. Servers run in child processes, one per variant;
// repetitions are interleaved (the variant order rotates every repetition);
// each figure is a median with its min–max spread, and each ratio is printed
// next to its target (issues #4 and #18) with PASS or MISS.
//   npm run build && node --import tsx bench/run.ts [--quick] [--only single,slow,many,idle,pipeline,live,tenk,storm,setup,otel,parser] [--strict] [--profile] [--src]
// Our package is measured from dist/ (what npm ships), or from src/ with --src.
// --quick runs every case small (seconds) to prove the suite runs; it asserts
// nothing about speed. The exit code is 1 when a case crashed or had errors
// (and, with --strict, when a target missed).
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { ratioChart, type ChartRow } from './lib/chart.js'
import { describeProfile } from './lib/profile.js'
import { fdLimits, raiseFdLimit, root, runJson, startServer, useSource, type Server } from './lib/processes.js'
import { median, summarize, type Summary } from './lib/stats.js'

const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const strict = argv.includes('--strict')
// --profile: run our server variant under `node --cpu-prof`, one profile per
// case in bench/results/profiles/, and print each profile's top self times.
const profile = argv.includes('--profile')
const source = argv.includes('--src')
if (source) useSource()
else if (!existsSync(join(root, 'dist', 'index.js'))) {
  console.error('bench: dist/index.js is missing: run `npm run build` first (`npm run bench` does), or pass --src to measure src/ under tsx')
  process.exit(1)
}
const onlyAt = argv.indexOf('--only')
const only = onlyAt === -1 ? undefined : new Set((argv[onlyAt + 1] ?? '').split(','))

// Sizes of every case: the full run (about 10 minutes on 2 cores) and --quick.
const plan = quick
  ? {
      single: { n: 2_000, rounds: 1, reps: 1 },
      slow: { n: 20_000, pauseMs: 300 },
      many: { streams: 50, n: 20, rounds: 1, reps: 1 },
      idle: { levels: [100, 200], reps: 1 },
      pipeline: { n: 2_000, reps: 1 },
      live: { streams: 50, n: 5, ms: 100, reps: 1 },
      tenk: { streams: 200, n: 4, ms: 250, reps: 1 },
      setup: { connections: 8, seconds: 0.5, warmupSeconds: 0.2, reps: 1 },
      parser: { runs: 2, reps: 1 },
    }
  : {
      single: { n: 50_000, rounds: 2, reps: 7 },
      slow: { n: 200_000, pauseMs: 3_000 },
      many: { streams: 1_000, n: 100, rounds: 3, reps: 5 },
      idle: { levels: [1_000, 5_000], reps: 3 },
      pipeline: { n: 50_000, reps: 5 },
      // Five reps: a p99 over 100,000 items still moves with the machine's noise; the median of five moves less.
      live: { streams: 1_000, n: 100, ms: 100, reps: 5 },
      // Issue #15, item 8: 10,000 streams at one frame a second for 30 s.
      tenk: { streams: 10_000, n: 30, ms: 1_000, reps: 2 },
      setup: { connections: 16, seconds: 3, warmupSeconds: 1, reps: 5 },
      parser: { runs: 20, reps: 5 },
    }

interface Ratio extends ChartRow {
  id: string
  /** Per-repetition ratios (paired within one repetition), when the case has them. */
  spread?: [number, number] | undefined
  note?: string
}

interface CaseResult {
  id: string
  title: string
  metrics: Record<string, Record<string, Summary>>
  errors: number
  extra?: Record<string, unknown>
}

const ratios: Ratio[] = []
const loads: Record<string, [number, number]> = {}
const cases: CaseResult[] = []
const crashes: string[] = []
let totalErrors = 0

// ---------------------------------------------------------------- printing

const num = (value: number, digits = 2): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a'
const summary = (s: Summary, digits = 2, unit = ''): string =>
  `${num(s.median, digits)}${unit} [${num(s.min, digits)}–${num(s.max, digits)}]`

function check (id: string, label: string, value: number, op: '<=' | '>=', target: number, spread?: [number, number], note?: string): void {
  const pass = Number.isFinite(value) && (op === '<=' ? value <= target : value >= target)
  ratios.push({ id, label, value, op, target, pass, spread, note })
  const range = spread === undefined ? '' : ` (per rep ${num(spread[0])}–${num(spread[1])})`
  console.log(`  ${pass ? 'PASS' : 'MISS'}  ${label.padEnd(50)} ${num(value, 3).padStart(6)}${range}   target ${op === '<=' ? '≤' : '≥'} ${target}${note === undefined ? '' : `   ${note}`}`)
}

/** A ratio printed for context, with no target. */
function info (label: string, value: number): void {
  console.log(`  info  ${label.padEnd(50)} ${num(value, 3).padStart(6)}`)
}

function heading (title: string): void { console.log(`\n## ${title}`) }

/** The 1-minute load average, printed with each case: other work on a 2-core machine skews every figure. */
function loadNote (): string {
  const load = os.loadavg()[0]!
  return `load average ${load.toFixed(2)}${load > os.cpus().length * 0.5 ? ' (busy machine: figures are noisier)' : ''}`
}

// ---------------------------------------------------------------- helpers

/** Runs `body(variant, rep)` for every repetition and variant, the order rotating each repetition. */
async function interleaved (variants: readonly string[], reps: number, body: (variant: string, rep: number) => Promise<void>): Promise<void> {
  for (let rep = 0; rep < reps; rep++) {
    for (let k = 0; k < variants.length; k++) await body(variants[(k + rep) % variants.length]!, rep)
  }
}

const profileDir = join(root, 'bench', 'results', 'profiles')
let currentCase = ''

function serverArgs (variant: string): string[] {
  if (!profile || variant !== 'ours') return []
  return ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, currentCase)}`]
}

async function withServers<T> (variants: readonly string[], body: (servers: Record<string, Server>) => Promise<T>): Promise<T> {
  const servers: Record<string, Server> = {}
  try {
    for (const variant of variants) servers[variant] = await startServer(variant, serverArgs(variant))
    return await body(servers)
  } finally {
    await Promise.all(Object.values(servers).map((server) => server.stop()))
  }
}

const client = <T>(args: object): Promise<T> => runJson<T>(['bench/client.mjs', JSON.stringify(args)])

/** The median of a[i] / b[i]: a ratio of variants whose reps ran back to back. */
function pairedMedian (a: readonly number[], b: readonly number[]): number {
  return median(a.map((v, i) => v / b[i]!))
}

/** Ratios of paired repetitions: min and max of a[i] / b[i]. */
function pairedSpread (a: readonly number[], b: readonly number[]): [number, number] {
  const r = a.map((v, i) => v / b[i]!)
  return [Math.min(...r), Math.max(...r)]
}

function collect<T extends object> (results: Record<string, T[]>, keys: (keyof T & string)[]): Record<string, Record<string, Summary>> {
  const metrics: Record<string, Record<string, Summary>> = {}
  for (const [variant, rows] of Object.entries(results)) {
    metrics[variant] = {}
    for (const key of keys) metrics[variant][key] = summarize(rows.map((row) => row[key] as number))
  }
  return metrics
}

// ---------------------------------------------------------------- cases

interface StreamRun { frames: number, errors: number, seconds: number, framesPerSec: number, serverCpuUsPerFrame: number }

async function singleStream (): Promise<void> {
  const { n, rounds, reps } = plan.single
  heading(`Single stream: ${n.toLocaleString('en-US')} frames (${rounds} stream(s) per measurement), events off — server CPU µs/frame and frames/s, median [min–max] of ${reps}`)
  const variants = ['ours', 'raw', 'raw-batched', 'fastify-sse']
  const runs: Record<string, StreamRun[]> = Object.fromEntries(variants.map((v) => [v, []]))
  await withServers(variants, (servers) => interleaved(variants, reps, async (variant) => {
    runs[variant]!.push(await client<StreamRun>({ mode: 'stream', port: servers[variant]!.port, n, rounds }))
  }))
  const metrics = collect(runs, ['serverCpuUsPerFrame', 'framesPerSec'])
  const errors = Object.values(runs).flat().reduce((sum, r) => sum + r.errors, 0)
  for (const v of variants) {
    console.log(`  ${v.padEnd(12)} ${summary(metrics[v]!.serverCpuUsPerFrame!, 3, ' µs/frame').padEnd(34)} ${summary(metrics[v]!.framesPerSec!, 0, ' frames/s')}`)
  }
  console.log(`  errors: ${errors}`)
  cases.push({ id: 'single', title: 'single stream', metrics, errors })
  totalErrors += errors
  const cpu = (v: string): number[] => runs[v]!.map((r) => r.serverCpuUsPerFrame)
  const med = (v: string): number => metrics[v]!.serverCpuUsPerFrame!.median
  check('single-vs-raw', 'single stream CPU/frame: ours ÷ raw', med('ours') / med('raw'), '<=', 0.8, pairedSpread(cpu('ours'), cpu('raw')))
  check('single-vs-fastify-sse', 'single stream CPU/frame: ours ÷ @fastify/sse', med('ours') / med('fastify-sse'), '<=', 0.7, pairedSpread(cpu('ours'), cpu('fastify-sse')))
  check('single-vs-raw-batched', 'single stream CPU/frame: ours ÷ raw-batched', med('ours') / med('raw-batched'), '<=', 1.3, pairedSpread(cpu('ours'), cpu('raw-batched')))
}

interface SlowRun { frames: number, errors: number, streamMB: number, peakRssGrowthMB: number, peakHeapGrowthMB: number, stalledLiveHeapGrowthMB: number }

async function slowReader (): Promise<void> {
  const { n, pauseMs } = plan.slow
  heading(`Slow reader: one ${n.toLocaleString('en-US')}-frame stream, the client stops reading for ${pauseMs} ms after its first chunk — server memory growth`)
  const variants = ['ours', 'raw']
  const runs: Record<string, SlowRun> = {}
  await withServers(variants, async (servers) => {
    for (const variant of variants) runs[variant] = await client<SlowRun>({ mode: 'slow', port: servers[variant]!.port, n, pauseMs })
  })
  for (const v of variants) {
    const r = runs[v]!
    console.log(`  ${v.padEnd(12)} stream ${num(r.streamMB, 1)} MB; while stalled: peak RSS growth ${num(r.peakRssGrowthMB, 1)} MB, peak heap+external growth ${num(r.peakHeapGrowthMB, 1)} MB, live (after GC) ${num(r.stalledLiveHeapGrowthMB, 2)} MB; frames ${r.frames}${v === 'raw' ? '   (reference)' : ''}`)
  }
  const errors = Object.values(runs).reduce((sum, r) => sum + r.errors, 0)
  console.log(`  errors: ${errors}`)
  const metrics = Object.fromEntries(Object.entries(runs).map(([v, r]) => [v, Object.fromEntries(
    (['streamMB', 'peakRssGrowthMB', 'peakHeapGrowthMB', 'stalledLiveHeapGrowthMB'] as const).map((k) => [k, summarize([r[k]])]))]))
  cases.push({ id: 'slow', title: 'slow reader', metrics, errors })
  totalErrors += errors
  const ours = runs['ours']!
  check('slow-bounded', 'slow reader: ours live heap growth ÷ stream size', ours.stalledLiveHeapGrowthMB / ours.streamMB, '<=', 0.1,
    undefined, '(bounded: the stalled server holds < 10% of the stream)')
}

async function manyStreams (): Promise<void> {
  const { streams, n, rounds, reps } = plan.many
  heading(`Many streams: ${streams.toLocaleString('en-US')} concurrent × ${n} frames, ${rounds} round(s) per measurement — aggregate frames/s, median [min–max] of ${reps}`)
  const variants = ['ours', 'raw']
  const runs: Record<string, StreamRun[]> = Object.fromEntries(variants.map((v) => [v, []]))
  await withServers(variants, (servers) => interleaved(variants, reps, async (variant) => {
    runs[variant]!.push(await client<StreamRun>({ mode: 'stream', port: servers[variant]!.port, n, concurrency: streams, rounds }))
  }))
  const metrics = collect(runs, ['framesPerSec', 'serverCpuUsPerFrame', 'errors'])
  for (const v of variants) {
    const errors = runs[v]!.reduce((sum, r) => sum + r.errors, 0)
    console.log(`  ${v.padEnd(12)} ${summary(metrics[v]!.framesPerSec!, 0, ' frames/s').padEnd(40)} ${summary(metrics[v]!.serverCpuUsPerFrame!, 3, ' µs/frame')}   errors ${errors}`)
  }
  const oursErrors = runs['ours']!.reduce((sum, r) => sum + r.errors, 0)
  const errors = Object.values(runs).flat().reduce((sum, r) => sum + r.errors, 0)
  cases.push({ id: 'many', title: 'many streams', metrics, errors })
  totalErrors += errors
  const fps = (v: string): number[] => runs[v]!.map((r) => r.framesPerSec)
  check('many-errors', `${streams} streams: ours errors`, oursErrors, '<=', 0)
  // Wall-clock frames/s moves with whatever else the 2 cores run; the server's CPU per frame is steadier.
  info(`${streams} streams server CPU/frame: ours ÷ raw`, metrics['ours']!.serverCpuUsPerFrame!.median / metrics['raw']!.serverCpuUsPerFrame!.median)
  check('many-vs-raw', `${streams} streams frames/s: ours ÷ raw`, metrics['ours']!.framesPerSec!.median / metrics['raw']!.framesPerSec!.median, '>=', 0.9,
    pairedSpread(fps('ours'), fps('raw')))
}

interface IdleRun { streams: number, errors: number, openSeconds: number, rssPerStreamKB: number, heapPerStreamKB: number, externalPerStreamKB: number }

async function idleStreams (): Promise<void> {
  const { levels, reps } = plan.idle
  heading(`Idle streams: ${levels.join(' and ')} open streams, heartbeat on (15 s) — server RSS and heap per stream (after GC), median [min–max] of ${reps}, a fresh server each`)
  const need = Math.max(...levels) + 1024
  const limits = fdLimits()
  if (limits !== undefined && limits.soft < need) {
    if (limits.hard >= need) {
      raiseFdLimit(need)
      console.log(`  (open-file limit ${limits.soft} < ${need}: raised to ${need} for the bench's processes)`)
    } else {
      console.log(`  ! open-file limit ${limits.soft} (hard ${limits.hard}) is below the ${need} this case needs: expect errors`)
    }
  }
  const variants = ['ours', 'fastify-sse']
  const runs: Record<string, IdleRun[]> = {}
  for (let rep = 0; rep < reps; rep++) {
    for (const streams of levels) {
      for (let k = 0; k < variants.length; k++) {
        const variant = variants[(k + rep) % variants.length]!
        const run = await withServers([variant], (servers) => client<IdleRun>({ mode: 'idle', port: servers[variant]!.port, streams }))
        ;(runs[`${variant}@${streams}`] ??= []).push(run)
      }
    }
  }
  const metrics = collect(runs, ['rssPerStreamKB', 'heapPerStreamKB', 'openSeconds'])
  const errors = Object.values(runs).flat().reduce((sum, r) => sum + r.errors, 0)
  for (const streams of levels) {
    for (const v of variants) {
      const m = metrics[`${v}@${streams}`]!
      console.log(`  ${v.padEnd(12)} ${String(streams).padStart(5)} streams: RSS ${summary(m.rssPerStreamKB!, 1, ' KB').padEnd(26)} heap ${summary(m.heapPerStreamKB!, 2, ' KB')}`)
    }
  }
  console.log(`  errors: ${errors}`)
  cases.push({ id: 'idle', title: 'idle streams', metrics, errors })
  totalErrors += errors
  for (const streams of levels) {
    const ours = metrics[`ours@${streams}`]!
    const sse = metrics[`fastify-sse@${streams}`]!
    check(`idle-rss-${streams}`, `idle RSS/stream @${streams}: ours ÷ @fastify/sse`, ours.rssPerStreamKB!.median / sse.rssPerStreamKB!.median, '<=', 1,
      pairedSpread(ours.rssPerStreamKB!.values, sse.rssPerStreamKB!.values))
    check(`idle-heap-${streams}`, `idle heap/stream @${streams}: ours ÷ @fastify/sse`, ours.heapPerStreamKB!.median / sse.heapPerStreamKB!.median, '<=', 1,
      pairedSpread(ours.heapPerStreamKB!.values, sse.heapPerStreamKB!.values))
  }
}

interface PipelineRun { items: number, events: number, errors: number, seconds: number, eventsPerSec: number, cpuUsPerEvent: number }

// Closed sockets, exited servers' memory, other processes' GC: a pause
// before a case that a busy machine skews (both variants get the same).
const SETTLE_MS = 10_000
function settle (): Promise<void> {
  return quick ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
}

async function eventPipeline (): Promise<void> {
  const { n, reps } = plan.pipeline
  heading(`Event pipeline: ${n.toLocaleString('en-US')} items × 2 domain events × 2 handlers, pool of 8, in-process — events/s, median [min–max] of ${reps}`)
  const variants = ['ours', 'bare']
  const runs: Record<string, PipelineRun[]> = { ours: [], bare: [] }
  // It follows 5,000 idle streams: let the machine settle first.
  await settle()
  await interleaved(variants, reps, async (variant) => {
    runs[variant]!.push(await runJson<PipelineRun>(['bench/pipeline.mjs', variant, String(n)], true))
  })
  const metrics = collect(runs, ['eventsPerSec', 'cpuUsPerEvent'])
  const errors = Object.values(runs).flat().reduce((sum, r) => sum + r.errors, 0)
  for (const v of variants) {
    console.log(`  ${(v === 'bare' ? 'bare p-limit' : v).padEnd(12)} ${summary(metrics[v]!.eventsPerSec!, 0, ' events/s').padEnd(40)} ${summary(metrics[v]!.cpuUsPerEvent!, 3, ' µs/event')}`)
  }
  console.log(`  errors: ${errors}`)
  cases.push({ id: 'pipeline', title: 'event pipeline', metrics, errors })
  totalErrors += errors
  const eps = (v: string): number[] => runs[v]!.map((r) => r.eventsPerSec)
  check('pipeline-vs-bare', 'event pipeline events/s: ours ÷ bare p-limit', metrics['ours']!.eventsPerSec!.median / metrics['bare']!.eventsPerSec!.median, '>=', 0.67,
    pairedSpread(eps('ours'), eps('bare')))
}

interface ParserRun { oursMs: number, theirsMs: number, oursMbPerSec: number, theirsMbPerSec: number, speedRatio: number, errors: number }

// Issue #18: the client's SSE parser against eventsource-parser, both in
// one process, in turns; the ratio is the median over processes of each
// process's median paired ratio.
async function parsers (): Promise<void> {
  const { runs, reps } = plan.parser
  const workloads = [
    ['long', 'one 8 MiB data line in 16 KiB reads'],
    ['small', '100,000 progress frames in 16 KiB reads'],
  ] as const
  for (const [workload, what] of workloads) {
    heading(`SSE parser: ${what}, in-process, in turns — MiB/s, median [min–max] of ${reps} processes (each the median of ${runs} paired runs)`)
    const results: ParserRun[] = []
    for (let rep = 0; rep < reps; rep++) results.push(await runJson<ParserRun>(['bench/parser.mjs', workload, String(runs)], true))
    const metrics = {
      ours: { mbPerSec: summarize(results.map((r) => r.oursMbPerSec)), ms: summarize(results.map((r) => r.oursMs)) },
      'eventsource-parser': { mbPerSec: summarize(results.map((r) => r.theirsMbPerSec)), ms: summarize(results.map((r) => r.theirsMs)) },
    }
    for (const [v, m] of Object.entries(metrics)) console.log(`  ${v.padEnd(20)} ${summary(m.mbPerSec, 1, ' MiB/s').padEnd(36)} ${summary(m.ms, 2, ' ms')}`)
    cases.push({ id: `parser-${workload}`, title: `SSE parser, ${what}`, metrics, errors: 0 })
    const ratios = results.map((r) => r.speedRatio)
    check(`parser-${workload}-vs-esp`, `client parser speed (${workload}): ours ÷ eventsource-parser`,
      summarize(ratios).median, '>=', 1.0, [Math.min(...ratios), Math.max(...ratios)])
  }
}

interface LiveRun { items: number, errors: number, seconds: number, p50Ms: number, p99Ms: number, maxMs: number, serverCpuUsPerFrame: number }

async function liveLatency (): Promise<void> {
  const { streams, n, ms, reps } = plan.live
  heading(`Live latency: ${streams.toLocaleString('en-US')} streams, one item every ${ms} ms, ${n} items (${(n * ms / 1000).toFixed(1)} s) — yield → client receipt, median [min–max] of ${reps}`)
  const variants = ['ours', 'raw']
  const runs: Record<string, LiveRun[]> = { ours: [], raw: [] }
  // A latency case after the heavy ones: let the machine settle before measuring the tail.
  await settle()
  await withServers(variants, async (servers) => {
    // Warm-up: a short run on each server.
    for (const v of variants) await client({ mode: 'live', port: servers[v]!.port, streams: Math.min(streams, 100), n: 3, ms })
    await interleaved(variants, reps, async (variant) => {
      runs[variant]!.push(await client<LiveRun>({ mode: 'live', port: servers[variant]!.port, streams, n, ms }))
    })
  })
  const metrics = collect(runs, ['p50Ms', 'p99Ms', 'maxMs', 'serverCpuUsPerFrame'])
  const errors = Object.values(runs).flat().reduce((sum, r) => sum + r.errors, 0)
  for (const v of variants) {
    const m = metrics[v]!
    console.log(`  ${v.padEnd(12)} p50 ${summary(m.p50Ms!, 2, ' ms').padEnd(26)} p99 ${summary(m.p99Ms!, 2, ' ms').padEnd(28)} max ${num(m.maxMs!.median)} ms`)
  }
  console.log(`  errors: ${errors}`)
  cases.push({ id: 'live', title: 'live latency', metrics, errors })
  totalErrors += errors
  const p99 = (v: string): number[] => runs[v]!.map((r) => r.p99Ms)
  check('live-p99-vs-raw', 'live p99 latency: ours ÷ raw', metrics['ours']!.p99Ms!.median / metrics['raw']!.p99Ms!.median, '<=', 1.5, pairedSpread(p99('ours'), p99('raw')))
  check('live-p99-abs', 'live p99 latency: ours ÷ 50 ms', metrics['ours']!.p99Ms!.median / 50, '<=', 1, undefined,
    `(ours p99 ${num(metrics['ours']!.p99Ms!.median)} ms, worst rep ${num(metrics['ours']!.p99Ms!.max)} ms)`)
}

interface LoadRun { requests: number, errors: number, warmupErrors: number, seconds: number, requestsPerSec: number, serverCpuUsPerRequest: number }

async function perStreamSetup (): Promise<void> {
  const { connections, seconds, warmupSeconds, reps } = plan.setup
  heading(`Per-stream setup: a 1-item stream vs a plain Fastify JSON route returning the same item, undici, ${connections} connections, ${seconds} s — requests/s, median [min–max] of ${reps}`)
  const variants = ['ours', 'fastify-json', 'ours-owned']
  const target = {
    ours: { path: '/stream?n=1', expect: '"type":"complete"' },
    'fastify-json': { path: '/json?n=1', expect: '"orderId":"order-0"' },
    // The same stream on a route with streamOwner, on the same server (issue #12).
    'ours-owned': { path: '/owned?n=1', expect: '"type":"complete"' },
  }
  const runs: Record<string, LoadRun[]> = { ours: [], 'fastify-json': [], 'ours-owned': [] }
  await withServers(['ours', 'fastify-json'], (servers) => interleaved(variants, reps, async (variant) => {
    runs[variant]!.push(await client<LoadRun>({
      mode: 'load', port: servers[variant === 'ours-owned' ? 'ours' : variant]!.port, ...target[variant as keyof typeof target], connections, seconds, warmupSeconds,
    }))
  }))
  const metrics = collect(runs, ['requestsPerSec', 'serverCpuUsPerRequest'])
  const errors = Object.values(runs).flat().reduce((sum, r) => sum + r.errors + r.warmupErrors, 0)
  for (const v of variants) {
    console.log(`  ${(v === 'ours' ? 'ours (SSE)' : v === 'ours-owned' ? 'ours, owned' : 'plain JSON').padEnd(12)} ${summary(metrics[v]!.requestsPerSec!, 0, ' req/s').padEnd(34)} ${summary(metrics[v]!.serverCpuUsPerRequest!, 1, ' µs/request (server CPU)')}`)
  }
  console.log(`  errors: ${errors}`)
  cases.push({ id: 'setup', title: 'per-stream setup', metrics, errors })
  totalErrors += errors
  const rps = (v: string): number[] => runs[v]!.map((r) => r.requestsPerSec)
  info('per-stream setup server CPU/request: ours ÷ JSON', metrics['ours']!.serverCpuUsPerRequest!.median / metrics['fastify-json']!.serverCpuUsPerRequest!.median)
  info('per-stream setup req/s: owned route ÷ ours without streamOwner', metrics['ours-owned']!.requestsPerSec!.median / metrics['ours']!.requestsPerSec!.median)
  check('setup-vs-json', 'per-stream setup req/s: ours ÷ plain JSON route', metrics['ours']!.requestsPerSec!.median / metrics['fastify-json']!.requestsPerSec!.median, '>=', 0.5,
    pairedSpread(rps('ours'), rps('fastify-json')))
}

// Issue #14, item 4: fastify-cqrs-stream/otel on (every span sampled, a
// no-op exporter) against off, on the same workloads as `single` and `setup`.
// The setup rate: well below what either server takes in a closed loop here.
const OTEL_SETUP_RATE = 5_000
// The ratios here are of two nearly identical servers against targets of
// 10 %, and this machine's speed drifts by up to 2× from one second to the
// next, in phases: identical servers measured 0.9–2.0 µs/frame rep by rep.
// Each rep of one variant runs right after the other's, so the ratio of a
// pair cancels the drift; the figure is the median of the paired ratios,
// over more pairs than `single` makes.
const OTEL_FRAME_REPS = 15
async function otelCost (): Promise<void> {
  const { n, rounds } = plan.single
  const reps = quick ? plan.single.reps : OTEL_FRAME_REPS
  const setupReps = plan.single.reps
  const { connections, seconds, warmupSeconds } = plan.setup
  heading(`OpenTelemetry on (always-on sampler, batch processor, no-op exporter) vs off: ${rounds} × a ${n.toLocaleString('en-US')}-frame stream (server CPU µs/frame) and 1-item streams (${connections} connections, ${seconds} s; server CPU µs/stream), median [min–max] of ${reps} and ${setupReps}, ratios the median of paired reps; "SDK floor": the same SDK called directly with the least that gives the same span and histogram`)
  const variants = ['ours', 'ours-otel']
  // The floor runs the per-stream case only: it does nothing per frame.
  const setupVariants = [...variants, 'ours-otel-floor']
  const frames: Record<string, StreamRun[]> = { ours: [], 'ours-otel': [] }
  const setups: Record<string, LoadRun[]> = { ours: [], 'ours-otel': [], 'ours-otel-floor': [] }
  const closedLoop: Record<string, LoadRun[]> = { ours: [], 'ours-otel': [] }
  await withServers(setupVariants, async (servers) => {
    await interleaved(variants, reps, async (variant) => {
      frames[variant]!.push(await client<StreamRun>({ mode: 'stream', port: servers[variant]!.port, n, rounds }))
    })
    // CPU per stream at the same paced load for all: in a closed loop the
    // slower server also pays more kernel time per request (fewer writes
    // and wakeups share a tick), which is not the instrumentation's cost.
    await interleaved(setupVariants, setupReps, async (variant) => {
      setups[variant]!.push(await client<LoadRun>({ mode: 'load', port: servers[variant]!.port, path: '/stream?n=1', expect: '"type":"complete"', connections, seconds, warmupSeconds, rate: OTEL_SETUP_RATE }))
    })
    await interleaved(variants, setupReps, async (variant) => {
      closedLoop[variant]!.push(await client<LoadRun>({ mode: 'load', port: servers[variant]!.port, path: '/stream?n=1', expect: '"type":"complete"', connections, seconds, warmupSeconds }))
    })
  })
  const frameMetrics = collect(frames, ['serverCpuUsPerFrame'])
  const setupMetrics = collect(setups, ['serverCpuUsPerRequest', 'requestsPerSec'])
  const closedMetrics = collect(closedLoop, ['serverCpuUsPerRequest', 'requestsPerSec'])
  const errors = Object.values(frames).flat().reduce((sum, r) => sum + r.errors, 0) +
    [...Object.values(setups), ...Object.values(closedLoop)].flat().reduce((sum, r) => sum + r.errors + r.warmupErrors, 0)
  console.log(`  ${''.padEnd(10)} ${'per frame'.padEnd(34)} ${`per stream at ${OTEL_SETUP_RATE.toLocaleString('en-US')} streams/s`.padEnd(34)} closed loop (${connections} connections)`)
  for (const v of variants) {
    console.log(`  ${(v === 'ours' ? 'otel off' : 'otel on').padEnd(10)} ${summary(frameMetrics[v]!.serverCpuUsPerFrame!, 3, ' µs/frame').padEnd(34)} ${summary(setupMetrics[v]!.serverCpuUsPerRequest!, 1, ' µs/stream').padEnd(34)} ${summary(closedMetrics[v]!.requestsPerSec!, 0, ' streams/s')}, ${summary(closedMetrics[v]!.serverCpuUsPerRequest!, 1, ' µs/stream')}`)
  }
  console.log(`  ${'SDK floor'.padEnd(10)} ${'-'.padEnd(34)} ${summary(setupMetrics['ours-otel-floor']!.serverCpuUsPerRequest!, 1, ' µs/stream')}`)
  console.log(`  errors: ${errors}`)
  cases.push({
    id: 'otel',
    title: 'OpenTelemetry cost',
    metrics: {
      ...frameMetrics,
      ...Object.fromEntries(Object.entries(setupMetrics).map(([k, v]) => [`${k}-setup`, v])),
      ...Object.fromEntries(Object.entries(closedMetrics).map(([k, v]) => [`${k}-closed-loop`, v])),
    },
    errors,
  })
  const frameCpus = (variant: string): number[] => frames[variant]!.map((r) => r.serverCpuUsPerFrame)
  const setupCpus = (variant: string): number[] => setups[variant]!.map((r) => r.serverCpuUsPerRequest)
  info('per-stream setup CPU in a closed loop: otel on ÷ off', pairedMedian(closedLoop['ours-otel']!.map((r) => r.serverCpuUsPerRequest), closedLoop['ours']!.map((r) => r.serverCpuUsPerRequest)))
  info('per-stream setup CPU: SDK floor ÷ off', pairedMedian(setupCpus('ours-otel-floor'), setupCpus('ours')))
  totalErrors += errors
  check('otel-frame', 'per-frame CPU: otel on ÷ off', pairedMedian(frameCpus('ours-otel'), frameCpus('ours')), '<=', 1.1, pairedSpread(frameCpus('ours-otel'), frameCpus('ours')))
  check('otel-setup', 'per-stream setup CPU: otel on ÷ off', pairedMedian(setupCpus('ours-otel'), setupCpus('ours')), '<=', 1.3, pairedSpread(setupCpus('ours-otel'), setupCpus('ours')))
  // What the module adds over calling the SDK directly: the part that is ours.
  check('otel-setup-floor', 'per-stream setup CPU: otel on ÷ SDK floor', pairedMedian(setupCpus('ours-otel'), setupCpus('ours-otel-floor')), '<=', 1.1, pairedSpread(setupCpus('ours-otel'), setupCpus('ours-otel-floor')))
}

// ---------------------------------------------------------------- main

const cpus = os.cpus()
interface TenkRun extends LiveRun { rssPerStreamKB: number, heapPerStreamKB: number, heapTotalPerStreamKB: number, peakRssMB: number }

// Issue #15, item 8: one instance holding 10,000 streams that each send a
// frame a second, against a bare node:http server doing the same; a fresh
// server per repetition, the variant order alternating.
async function tenThousand (): Promise<void> {
  const { streams, n, ms, reps } = plan.tenk
  heading(`${streams.toLocaleString('en-US')} streams × one frame every ${ms} ms × ${n} (${(n * ms / 1000).toFixed(0)} s) — latency, and server RSS/heap per stream halfway (after GC), median [min–max] of ${reps}, a fresh server each`)
  const need = streams + 1024
  const limits = fdLimits()
  if (limits !== undefined && limits.soft < need && limits.hard >= need) raiseFdLimit(need)
  const variants = ['ours', 'raw']
  const runs: Record<string, TenkRun[]> = { ours: [], raw: [] }
  await settle()
  for (let rep = 0; rep < reps; rep++) {
    for (let k = 0; k < variants.length; k++) {
      const variant = variants[(k + rep) % variants.length]!
      runs[variant]!.push(await withServers([variant], (servers) => client<TenkRun>({ mode: 'live', port: servers[variant]!.port, streams, n, ms, mem: true })))
    }
  }
  const metrics = collect(runs, ['p50Ms', 'p99Ms', 'maxMs', 'rssPerStreamKB', 'heapPerStreamKB', 'heapTotalPerStreamKB', 'peakRssMB', 'serverCpuUsPerFrame'])
  const errors = Object.values(runs).flat().reduce((sum, r) => sum + r.errors, 0)
  for (const v of variants) {
    const m = metrics[v]!
    console.log(`  ${v.padEnd(6)} p50 ${summary(m.p50Ms!, 2, ' ms').padEnd(24)} p99 ${summary(m.p99Ms!, 2, ' ms').padEnd(26)} RSS ${summary(m.rssPerStreamKB!, 1, ' KB').padEnd(26)} heap ${summary(m.heapPerStreamKB!, 1, ' KB').padEnd(24)} (committed ${num(m.heapTotalPerStreamKB!.median, 1)} KB) RSS at halfway ${num(m.peakRssMB!.median, 0)} MB`)
  }
  console.log(`  errors: ${errors} (a stream that got fewer than its ${n} frames, a refused or cut one)`)
  cases.push({ id: 'tenk', title: `${streams} live streams`, metrics, errors })
  totalErrors += errors
  const rss = (v: string): number[] => runs[v]!.map((r) => r.rssPerStreamKB)
  check('tenk-p99-abs', `${streams} streams: live p99 latency ÷ 100 ms`, metrics['ours']!.p99Ms!.median / 100, '<=', 1)
  check('tenk-rss-vs-raw', `${streams} streams: RSS per stream, ours ÷ bare node:http`, metrics['ours']!.rssPerStreamKB!.median / metrics['raw']!.rssPerStreamKB!.median, '<=', 1,
    pairedSpread(rss('ours'), rss('raw')))
}

interface StormRun {
  skipped?: string
  streams: number,
  resumed: number,
  reconnects: number,
  complete: number,
  frameErrors: number,
  firstErrors: string[],
  ranOnce: number,
  ranMoreThanOnce: number,
  errors: number
  toResumeMs: { p50: number, p99: number, max: number },
  cutToResumedMs: { p50: number, p99: number, max: number },
  peakRssMB: number[]
  instanceCpuUsPerResume: number[]
}

// Issue #15, item 6: bench/reconnect-storm.ts, with and without a jittered
// first reconnect. It needs Redis (REDIS_URL): without it, it is skipped.
async function reconnectStorm (): Promise<void> {
  const streams = quick ? 200 : 5_000
  heading(`Reconnect storm: ${streams.toLocaleString('en-US')} resumable streams on two instances sharing Redis, behind the round-robin proxy; every connection cut at once; EventSource-like clients reconnect after retry (1 s) + jitter`)
  await settle()
  const rows: Array<[number, StormRun]> = []
  for (const jitter of [0, 1000]) {
    const run = await runJson<StormRun>(['--import', 'tsx', 'bench/reconnect-storm.ts', '--streams', String(streams), '--jitter', String(jitter), ...(quick ? ['--quick'] : [])], false, 300_000)
    if (run.skipped !== undefined) {
      console.log(`  skipped: ${run.skipped}`)
      return
    }
    rows.push([jitter, run])
    const ms = (d: { p50: number, p99: number, max: number }): string => `p50 ${num(d.p50, 0)} / p99 ${num(d.p99, 0)} / max ${num(d.max, 0)} ms`
    console.log(`  jitter ${String(jitter).padStart(4)} ms: reconnect → resumed ${ms(run.toResumeMs)}; cut → resumed ${ms(run.cutToResumedMs)}; peak RSS ${run.peakRssMB.map((mb) => `${num(mb, 0)} MB`).join(' and ')}; instance CPU per stream resumed ${run.instanceCpuUsPerResume.map((us) => `${num(us / 1000, 2)} ms`).join(' and ')}`)
    console.log(`    ${run.resumed} of ${run.streams} resumed (${run.reconnects} reconnects), ${run.complete} complete with every frame once and in order (${run.frameErrors} frame errors${run.firstErrors.length > 0 ? `: ${run.firstErrors.join('; ')}` : ''}), ${run.ranOnce} commands ran once, ${run.ranMoreThanOnce} more than once`)
    totalErrors += run.errors
  }
  cases.push({
    id: 'storm',
    title: 'reconnect storm',
    metrics: Object.fromEntries(rows.map(([jitter, run]) => [`jitter-${jitter}`, {
      toResumeP50Ms: summarize([run.toResumeMs.p50]),
      toResumeP99Ms: summarize([run.toResumeMs.p99]),
      toResumeMaxMs: summarize([run.toResumeMs.max]),
      peakRssMB: summarize([Math.max(...run.peakRssMB)]),
    }])),
    errors: rows.reduce((sum, [, run]) => sum + run.errors, 0),
  })
}

const machine = {
  cpu: cpus[0]?.model ?? 'unknown',
  cores: cpus.length,
  memoryGB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  openFiles: fdLimits(),
}
const started = Date.now()
if (profile) rmSync(profileDir, { recursive: true, force: true })
console.log(`fastify-cqrs-stream bench${quick ? ' --quick (sizes too small to mean anything: proves the suite runs)' : ''}`)
console.log(`package: ${source ? 'src/ (under tsx)' : 'dist/ (the build)'}`)
console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, node ${machine.node}, ${machine.platform}, open files ${machine.openFiles?.soft ?? '?'}`)

const suite: Array<[string, () => Promise<void>]> = [
  ['single', singleStream], ['slow', slowReader], ['many', manyStreams], ['idle', idleStreams],
  ['pipeline', eventPipeline], ['live', liveLatency], ['tenk', tenThousand], ['storm', reconnectStorm], ['setup', perStreamSetup], ['otel', otelCost], ['parser', parsers],
]
for (const [id, run] of suite) {
  if (only !== undefined && !only.has(id)) continue
  const t0 = Date.now()
  currentCase = id
  const loadBefore = loadNote()
  const load0 = os.loadavg()[0]!
  try {
    await run()
    loads[id] = [load0, os.loadavg()[0]!]
    console.log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s; before: ${loadBefore}; after: ${loadNote()})`)
  } catch (error) {
    crashes.push(id)
    console.error(`\n  ! case ${id} crashed: ${(error as Error).stack ?? String(error)}`)
  }
}

if (profile) {
  heading('Profiles of our server (node --cpu-prof)')
  for (const [id] of suite) {
    const dir = join(profileDir, id)
    if (!existsSync(dir)) continue
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main
    // thread (tsx's loader has a thread of its own); the largest is the busiest server.
    const main = readdirSync(dir).filter((f) => f.split('.')[4] === '0')
      .map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0]
    if (main !== undefined) for (const line of describeProfile(main)) console.log(line)
  }
}

const durationS = (Date.now() - started) / 1000
const misses = ratios.filter((r) => !r.pass)
heading('Ratios against their targets (issues #4 and #18)')
for (const r of ratios) {
  console.log(`  ${r.pass ? 'PASS' : 'MISS'}  ${r.label.padEnd(50)} ${num(r.value, 3).padStart(6)}   target ${r.op === '<=' ? '≤' : '≥'} ${r.target}`)
}
console.log(`\n${ratios.length - misses.length} of ${ratios.length} targets hold; errors ${totalErrors}; crashed cases: ${crashes.length === 0 ? 'none' : crashes.join(', ')}; ${durationS.toFixed(0)} s`)

const outDir = join(root, 'bench', 'results')
const name = quick ? 'quick' : 'latest'
mkdirSync(outDir, { recursive: true })
const when = new Date(started).toISOString()
writeFileSync(join(outDir, `${name}.json`), JSON.stringify({ when, quick, package: source ? 'src' : 'dist', durationS, machine, plan, ratios, cases, loadAverages: loads, errors: totalErrors, crashes }, null, 2) + '\n')
writeFileSync(join(outDir, `${name}.svg`), ratioChart(
  `fastify-cqrs-stream vs anchors${quick ? ' (--quick: not meaningful)' : ''}`,
  `${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${when.slice(0, 16).replace('T', ' ')} UTC`,
  ratios.filter((r) => r.id !== 'many-errors')))
console.log(`results: bench/results/${name}.json, bench/results/${name}.svg`)

process.exitCode = crashes.length > 0 || totalErrors > 0 || (strict && misses.length > 0) ? 1 : 0
