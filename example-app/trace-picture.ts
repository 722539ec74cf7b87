import { SpanKind } from '@opentelemetry/api'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { InMemoryMessageBroker } from '../src/index.js'
import { buildApp } from './app.js'
import { startTelemetry } from './telemetry.js'

// `npm run docs:trace`: docs/stream-trace.svg and the trace tree and
// metrics shown in docs/observability.md, from one real run of the orders
// demo with OTEL=1's setup: a POST stream of three orders over a socket,
// its event handlers and its broker sends. Not loaded by the tests (so
// outside the coverage gate); run it again when the spans change.

const ORDERS = ['a', 'b', 'c']
const ORDER_DELAY_MS = 50
const output = fileURLToPath(new URL('../docs/stream-trace.svg', import.meta.url))

const exporter = new InMemorySpanExporter()
const telemetry = await startTelemetry(
  { traces: 'none', metricsPort: 0, metricsHost: '127.0.0.1', serviceName: 'orders-demo' },
  { spanExporter: exporter }
)
const app = await buildApp({ orderDelayMs: ORDER_DELAY_MS, broker: new InMemoryMessageBroker(), beforeRoutes: telemetry.requestSpans })
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address() as AddressInfo
const response = await fetch(`http://127.0.0.1:${port}/orders/process`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
  body: JSON.stringify({ orderIds: ORDERS }),
})
const body = await response.text()
// The request's span ends when the socket's response closes, just after the body's end.
for (let tries = 0; !exporter.getFinishedSpans().some((span) => span.name === 'POST /orders/process'); tries++) {
  if (tries > 200) throw new Error('the request span did not end')
  await sleep(5)
}
const metrics = await (await fetch(`http://127.0.0.1:${telemetry.metricsPort}/metrics`)).text()
// Before close(): the in-memory exporter forgets its spans when shut down.
const spans = exporter.getFinishedSpans()
await app.close()
await telemetry.close()

const ms = (time: readonly [number, number]): number => time[0] * 1e3 + time[1] / 1e6
interface Row { span: ReadableSpan, depth: number }
function rows (parent: string | undefined, depth: number): Row[] {
  return spans
    .filter((span) => span.parentSpanContext?.spanId === parent)
    .sort((a, b) => ms(a.startTime) - ms(b.startTime))
    .flatMap((span) => [{ span, depth }, ...rows(span.spanContext().spanId, depth + 1)])
}
const all = rows(undefined, 0)
const t0 = Math.min(...all.map(({ span }) => ms(span.startTime)))
const t1 = Math.max(...all.map(({ span }) => ms(span.endTime)))

const duration = (span: ReadableSpan): string => {
  const d = ms(span.duration)
  return d >= 10 ? `${d.toFixed(0)} ms` : d >= 1 ? `${d.toFixed(1)} ms` : `${d.toFixed(2)} ms`
}
// The stream's own attributes on its row: how it ended, and what it sent.
const about = (span: ReadableSpan): string => {
  const { 'cqrs_stream.outcome': outcome, 'cqrs_stream.frames': frames, 'cqrs_stream.bytes': bytes } = span.attributes
  return outcome === undefined ? '' : ` · ${String(outcome)}, ${String(frames)} frames, ${String(bytes)} B`
}
const kindName = (kind: SpanKind): string => SpanKind[kind]!
const colors: Partial<Record<SpanKind, string>> = { [SpanKind.SERVER]: '#1565c0', [SpanKind.INTERNAL]: '#2e7d32', [SpanKind.PRODUCER]: '#ef6c00' }
const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

// Names on the left, a time axis on the right: each bar from its span's start to its end.
const width = 1040
const nameWidth = 440
const left = nameWidth + 20
const right = width - 90
const top = 78
const rowHeight = 22
const height = top + all.length * rowHeight + 48
const x = (time: number): number => left + (time - t0) / (t1 - t0) * (right - left)
const step = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000].find((s) => (t1 - t0) / s <= 8) ?? 1000
const svg: string[] = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
  `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  `<text x="12" y="22" font-size="15" font-weight="600">One stream of the orders demo: POST /orders/process, ${ORDERS.length} orders of ${ORDER_DELAY_MS} ms</text>`,
  `<text x="12" y="40" fill="#555">${spans.length} spans of one trace, from the in-memory exporter; rendered by npm run docs:trace (example-app/trace-picture.ts), node ${process.version}</text>`,
]
for (let tick = 0; tick <= t1 - t0; tick += step) {
  svg.push(`<line x1="${x(t0 + tick).toFixed(1)}" y1="${top - 14}" x2="${x(t0 + tick).toFixed(1)}" y2="${top + all.length * rowHeight}" stroke="#e3e3e3" stroke-width="1"/>`)
  svg.push(`<text x="${x(t0 + tick).toFixed(1)}" y="${top - 18}" text-anchor="middle" fill="#555">${tick} ms</text>`)
}
all.forEach(({ span, depth }, i) => {
  const y = top + i * rowHeight
  const color = colors[span.kind] ?? '#555'
  if (i % 2 === 1) svg.push(`<rect x="0" y="${y}" width="${width}" height="${rowHeight}" fill="#f6f8fa"/>`)
  svg.push(`<text x="${12 + depth * 18}" y="${y + 15}" font-family="ui-monospace, SFMono-Regular, Menlo, monospace" font-size="11.5">${escape(span.name)} <tspan fill="${color}" font-size="10">${kindName(span.kind)}</tspan></text>`)
  const x0 = x(ms(span.startTime))
  const barWidth = Math.max(2, x(ms(span.endTime)) - x0)
  svg.push(`<rect x="${x0.toFixed(1)}" y="${y + 5}" width="${barWidth.toFixed(1)}" height="${rowHeight - 10}" rx="2" fill="${color}" opacity="0.85"/>`)
  const label = `${duration(span)}${about(span)}`
  // A label that would run off the right edge goes inside, or left of, its bar.
  const labelX = x0 + barWidth + 5 + label.length * 6.5 > width ? x0 + barWidth - 5 : x0 + barWidth + 5
  svg.push(`<text x="${labelX.toFixed(1)}" y="${y + 15}"${labelX < x0 + barWidth ? ' text-anchor="end" fill="#ffffff"' : ' fill="#333"'}>${escape(label)}</text>`)
})
const legendY = top + all.length * rowHeight + 28
svg.push(...[SpanKind.SERVER, SpanKind.INTERNAL, SpanKind.PRODUCER].map((kind, i) =>
  `<rect x="${12 + i * 110}" y="${legendY - 10}" width="12" height="12" rx="2" fill="${colors[kind]}" opacity="0.85"/><text x="${30 + i * 110}" y="${legendY}">${kindName(kind)}</text>`))
svg.push(`<text x="${width - 12}" y="${legendY}" text-anchor="end" fill="#555">bars: each span from its start to its end, on the axis above</text>`)
svg.push('</svg>', '')
await writeFile(output, svg.join('\n'))

// For docs/observability.md: the tree, and the metrics without their buckets.
console.log(`wrote ${output} (${spans.length} spans, a ${Buffer.byteLength(body)}-byte stream)\n`)
for (const { span, depth } of all) {
  console.log(`${'   '.repeat(depth)}${span.name.padEnd(52 - depth * 3)} ${kindName(span.kind).padEnd(9)} ${duration(span)}${about(span).replace(' · ', '   ')}`)
}
console.log()
console.log(metrics.split('\n').filter((line) => line !== '' && !line.startsWith('#') && !line.includes('_bucket{')).join('\n'))
