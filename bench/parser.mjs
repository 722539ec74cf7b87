// The client's SSE parser against eventsource-parser (the parser of the
// `eventsource` package and of eventsource-client), in-process, on the
// same text in the same pieces:
//   long   one 8 MiB data line, in 16 KiB reads decoded one by one (what fetch delivers)
//   small  100,000 frames as our server writes them (id, event, data of a progress
//          frame), in 16 KiB reads cut wherever they fall
// Both run in one process, one after the other and in turns (the machine's
// drift then hits both alike), and the figure is the median of the paired
// speed ratios: ours is SseLineParser (from dist/, or from src/ with
// BENCH_LIB=src), theirs createParser, each event counted in its callback.
// usage: node bench/parser.mjs WORKLOAD [RUNS]   (prints one JSON line)
import { createParser } from 'eventsource-parser'

const [workload, runsArg] = process.argv.slice(2)
const runs = Number(runsArg ?? 20)
const PIECE = 16 * 1024

// What fetch hands over: the bytes in 16 KiB reads, each decoded as it
// comes (flat strings, not slices of one big string).
function pieces (text) {
  const bytes = Buffer.from(text)
  const decoder = new TextDecoder()
  const out = []
  for (let at = 0; at < bytes.length; at += PIECE) out.push(decoder.decode(bytes.subarray(at, at + PIECE), { stream: true }))
  return out
}

function body () {
  if (workload === 'long') return { text: `id: s:1\nevent: progress\ndata: ${'x'.repeat(8 * 1024 * 1024)}\n\n`, events: 1 }
  if (workload === 'small') {
    let text = ''
    for (let i = 0; i < 100_000; i++) {
      text += `id: 0f9e8d7c-6b5a-4938-8d90-0b08e51ed436:${i}\nevent: progress\ndata: {"type":"progress","data":{"orderId":"order-${i}","status":"processed","itemsCount":3}}\n\n`
    }
    return { text, events: 100_000 }
  }
  throw new Error(`unknown workload ${workload}`)
}

const { SseLineParser } = await import(process.env.BENCH_LIB === 'src' ? '../src/client/sse-line-parser.ts' : '../dist/client/sse-line-parser.js')

// Each parses every piece once and returns the events dispatched and a
// checksum of their data. The checksum reads the data's last character, so
// a parser that handed out an unjoined rope would pay for joining it here,
// as its user would. Two functions, so that neither call site is shared.
function ours (chunks) {
  let events = 0
  let sum = 0
  const parser = new SseLineParser({ onMessage: (message) => { events++; sum += message.data.length + message.data.charCodeAt(message.data.length - 1) } })
  for (const chunk of chunks) parser.push(chunk)
  return { events, sum }
}

function theirs (chunks) {
  let events = 0
  let sum = 0
  const parser = createParser({ onEvent: (event) => { events++; sum += event.data.length + event.data.charCodeAt(event.data.length - 1) } })
  for (const chunk of chunks) parser.feed(chunk)
  return { events, sum }
}

function timed (parse, chunks, expected) {
  const t0 = process.hrtime.bigint()
  const result = parse(chunks)
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (result.events !== expected.events || result.sum !== expected.sum) throw new Error(`${parse.name}: ${result.events} events, not ${expected.events}`)
  return ms
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

const { text, events } = body()
const chunks = pieces(text)
const expected = ours(chunks)
if (expected.events !== events) throw new Error(`ours dispatched ${expected.events} events, not ${events}`)
// Warm both up, then alternate which goes first: the machine's drift hits both alike.
for (let i = 0; i < 3; i++) { timed(ours, chunks, expected); timed(theirs, chunks, expected) }
const oursMs = []
const theirsMs = []
const speedRatios = []
for (let i = 0; i < runs; i++) {
  let a, b
  if (i % 2 === 0) {
    a = timed(ours, chunks, expected)
    b = timed(theirs, chunks, expected)
  } else {
    b = timed(theirs, chunks, expected)
    a = timed(ours, chunks, expected)
  }
  oursMs.push(a)
  theirsMs.push(b)
  speedRatios.push(b / a)
}
const mib = text.length / 2 ** 20
console.log(JSON.stringify({
  workload,
  oursMs: median(oursMs),
  theirsMs: median(theirsMs),
  oursMbPerSec: mib / (median(oursMs) / 1000),
  theirsMbPerSec: mib / (median(theirsMs) / 1000),
  speedRatio: median(speedRatios),
  events,
  errors: 0,
}))
