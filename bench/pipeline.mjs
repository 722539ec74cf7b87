// The event pipeline, in-process: a stream of N items whose handler emits two
// domain events per item, each bound to two event handlers, under a pool of 8.
//   ours  bootstrapStreaming({ maxConcurrentEventHandlers: 8 }) and mediator.stream()
//   bare  what one would write by hand: an async generator that, per item, makes the
//         same two events, runs the same four handle() calls under pLimit(8), awaits
//         them, then yields the item
// The package comes from dist/, or from src/ with BENCH_LIB=src (under tsx).
// usage: node bench/pipeline.mjs VARIANT N   (prints one JSON line)
import { Type } from '@sinclair/typebox'
import pLimit from 'p-limit'
import { resultOf, resultSchema } from './lib/workload.mjs'

const lib = await import(process.env.BENCH_LIB === 'src' ? '../src/index.ts' : '../dist/index.js')
const { bootstrapStreaming, DomainEvent, EventHandler, Request, Response, StreamingRequestHandler } = lib

class PipelineCommand extends Request(Type.Object({ n: Type.Integer({ minimum: 0 }) })) {}
class OrderResult extends Response(resultSchema) {}
class OrderProcessed extends DomainEvent(Type.Object({ orderId: Type.String(), totalAmount: Type.Number() })) {}
class OrderAnalytics extends DomainEvent(Type.Object({ orderId: Type.String(), category: Type.String() })) {}

// Trivial work, so the figure is the pipeline's own cost.
let handled = 0
let checksum = 0
class AuditHandler extends EventHandler {
  async handle (event) { handled++; checksum += event.totalAmount }
}
class BillingHandler extends EventHandler {
  async handle (event) { handled++; checksum += event.orderId.length }
}
class AnalyticsHandler extends EventHandler {
  async handle (event) { handled++; checksum += event.category.length }
}
class ReportHandler extends EventHandler {
  async handle (event) { handled++; checksum += event.orderId.length }
}

function eventsOf (i) {
  const orderId = `order-${i}`
  return [new OrderProcessed({ orderId, totalAmount: 100 }), new OrderAnalytics({ orderId, category: 'electronics' })]
}

class PipelineHandler extends StreamingRequestHandler {
  async * handle (command) {
    for (let i = 0; i < command.n; i++) {
      const [processed, analytics] = eventsOf(i)
      this.emit(processed)
      this.emit(analytics)
      yield new OrderResult(resultOf(i))
    }
  }
}

const mediator = bootstrapStreaming({
  requests: (map) => map.bind(PipelineCommand, PipelineHandler),
  events: (map) => map
    .bind(OrderProcessed, AuditHandler).bind(OrderProcessed, BillingHandler)
    .bind(OrderAnalytics, AnalyticsHandler).bind(OrderAnalytics, ReportHandler),
  maxConcurrentEventHandlers: 8,
  concurrentEventHandling: true,
})

async function ours (n) {
  let items = 0
  for await (const item of mediator.stream(new PipelineCommand({ n }))) if (item !== undefined) items++
  return items
}

const limit = pLimit(8)
const context = { signal: new AbortController().signal, streamId: 'bare' }
const audit = new AuditHandler()
const billing = new BillingHandler()
const analytics = new AnalyticsHandler()
const report = new ReportHandler()

async function * bareStream (n) {
  for (let i = 0; i < n; i++) {
    const [processed, analyticsEvent] = eventsOf(i)
    await Promise.all([
      limit(() => audit.handle(processed, context)),
      limit(() => billing.handle(processed, context)),
      limit(() => analytics.handle(analyticsEvent, context)),
      limit(() => report.handle(analyticsEvent, context)),
    ])
    yield new OrderResult(resultOf(i))
  }
}

async function bare (n) {
  let items = 0
  for await (const item of bareStream(n)) if (item !== undefined) items++
  return items
}

const variant = process.argv[2]
const n = Number(process.argv[3] ?? 50_000)
const run = variant === 'ours' ? ours : variant === 'bare' ? bare : undefined
if (run === undefined) throw new Error(`unknown variant ${String(variant)}`)

await run(Math.max(1, Math.floor(n / 5))) // warm-up
handled = 0
const c0 = process.cpuUsage()
const t0 = process.hrtime.bigint()
const items = await run(n)
const seconds = Number(process.hrtime.bigint() - t0) / 1e9
const cpu = process.cpuUsage(c0)
const events = 2 * items
console.log(JSON.stringify({
  items,
  events,
  handlerCalls: handled,
  errors: items === n && handled === 4 * n ? 0 : 1,
  seconds,
  eventsPerSec: events / seconds,
  cpuUsPerEvent: (cpu.user + cpu.system) / events,
  checksum,
}))
