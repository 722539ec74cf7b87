// The client's SSE parser against eventsource-parser (the parser of the
// `eventsource` package and of eventsource-client), in-process, on the
// same text in the same pieces:
//   long   one 8 MiB data line, pushed in 16 Ki-character pieces (what fetch delivers)
//   small  100,000 frames as our server writes them (id, event, data of a progress
//          frame), in 16 Ki-character pieces cut wherever they fall
// Variants: ours (SseLineParser, from dist/ or from src/ with BENCH_LIB=src)
// and eventsource-parser (createParser, its events counted in onEvent).
// usage: node bench/parser.mjs VARIANT WORKLOAD [RUNS]   (prints one JSON line)
import { createParser } from 'eventsource-parser'

const [variant, workload, runsArg] = process.argv.slice(2)
const runs = Number(runsArg ?? 5)
const PIECE = 16 * 1024

function pieces (text) {
  const out = []
  for (let at = 0; at < text.length; at += PIECE) out.push(text.slice(at, at + PIECE))
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

const lib = variant === 'ours'
  ? await import(process.env.BENCH_LIB === 'src' ? '../src/client/sse-line-parser.ts' : '../dist/client/sse-line-parser.js')
  : undefined

/**
 * Parses every piece once; returns the events dispatched and a checksum of
 * their data. The checksum reads the data's last character, so a parser that
 * handed out an unjoined rope would pay for joining it here, as its user would.
 */
function parse (chunks) {
  let events = 0
  let length = 0
  if (variant === 'ours') {
    const parser = new lib.SseLineParser()
    for (const chunk of chunks) {
      for (const message of parser.push(chunk)) {
        events++
        length += message.data.length + message.data.charCodeAt(message.data.length - 1)
      }
    }
  } else if (variant === 'eventsource-parser') {
    const parser = createParser({ onEvent: (event) => { events++; length += event.data.length + event.data.charCodeAt(event.data.length - 1) } })
    for (const chunk of chunks) parser.feed(chunk)
  } else {
    throw new Error(`unknown variant ${variant}`)
  }
  return { events, length }
}

const { text, events: expected } = body()
const chunks = pieces(text)
// One run to warm up (and check), then the timed ones.
const first = parse(chunks)
if (first.events !== expected) throw new Error(`${variant} dispatched ${first.events} events, not ${expected}`)
const times = []
for (let i = 0; i < runs; i++) {
  const t0 = process.hrtime.bigint()
  const result = parse(chunks)
  times.push(Number(process.hrtime.bigint() - t0) / 1e6)
  if (result.length !== first.length) throw new Error('runs disagree')
}
times.sort((a, b) => a - b)
const ms = times[Math.floor(times.length / 2)]
console.log(JSON.stringify({ variant, workload, ms, mbPerSec: text.length / 2 ** 20 / (ms / 1000), events: first.events, errors: 0 }))
