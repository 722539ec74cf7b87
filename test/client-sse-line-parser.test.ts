import { isDeepStrictEqual } from 'node:util'
import { createParser } from 'eventsource-parser'
import fc from 'fast-check'
import t from 'tap'
import { SseLineParser, type SseLineParserOptions, type SseMessage } from '../src/client/sse-line-parser.js'

// The client's parser against the WHATWG rules: every line ending, chunks
// split anywhere, and the fields a browser's EventSource ignores.

function parseAll (chunks: string[]): { messages: SseMessage[], retries: number[] } {
  const retries: number[] = []
  const messages: SseMessage[] = []
  const parser = new SseLineParser({ onMessage: (message) => { messages.push(message) }, onRetry: (ms) => { retries.push(ms) } })
  for (const chunk of chunks) parser.push(chunk)
  return { messages, retries }
}

/** A parser whose push() returns the events that chunk completed. */
function feeder (options: Omit<SseLineParserOptions, 'onMessage'> = {}): { push: (chunk: string) => SseMessage[], readonly error: unknown } {
  const messages: SseMessage[] = []
  const parser = new SseLineParser({ ...options, onMessage: (message) => { messages.push(message) } })
  return {
    push: (chunk) => {
      parser.push(chunk)
      return messages.splice(0)
    },
    get error () { return parser.error },
  }
}

const frame = (data: string, lastEventId: string, type = 'message'): SseMessage => ({ type, data, lastEventId })

t.test('LF, CRLF and CR line ends give the same events', async (t) => {
  const lf = 'id: s:0\ndata: {"a":1}\n\nid: s:1\ndata: {"b":2}\n\n'
  const expected = [frame('{"a":1}', 's:0'), frame('{"b":2}', 's:1')]
  t.same(parseAll([lf]).messages, expected, 'LF')
  t.same(parseAll([lf.replaceAll('\n', '\r\n')]).messages, expected, 'CRLF')
  t.same(parseAll([lf.replaceAll('\n', '\r')]).messages, expected, 'CR')
  t.same(parseAll(['id: s:0\r\ndata: {"a":1}\r\r\nid: s:1\ndata: {"b":2}\r\n\n']).messages, expected, 'mixed')
})

t.test('an event is dispatched as soon as its blank line arrives, in whatever pieces the body comes', async (t) => {
  const body = 'id: s:0\r\ndata: one\r\n\r\nid: s:1\rdata: two\r\rid: s:2\ndata: three\n\n'
  const expected = [frame('one', 's:0'), frame('two', 's:1'), frame('three', 's:2')]
  for (let size = 1; size <= body.length; size++) {
    const chunks: string[] = []
    for (let at = 0; at < body.length; at += size) chunks.push(body.slice(at, at + size))
    t.same(parseAll(chunks).messages, expected, `chunks of ${size}`)
  }
  // A CR-terminated blank line dispatches at once, without waiting for a possible LF.
  const parser = feeder()
  t.same(parser.push('data: x\r\r'), [frame('x', '')], 'dispatched on the CR')
  t.same(parser.push('\ndata: y\n\n'), [frame('y', '')], 'the LF after it ends no line')
})

t.test('a CR at the end of a chunk, an empty chunk, then the LF: one line end', async (t) => {
  const parser = feeder()
  t.same(parser.push('data: a\r'), [])
  t.same(parser.push(''), [])
  t.same(parser.push('\n'), [])
  t.same(parser.push('\n'), [frame('a', '')], 'only the second LF is the blank line')
})

t.test('data lines are joined with LF; an empty data line still dispatches', async (t) => {
  t.same(parseAll(['data: first\ndata:second\ndata:  third\n\n']).messages, [frame('first\nsecond\n third', '')])
  t.same(parseAll(['data\n\n']).messages, [frame('', '')], 'a field name alone is an empty value')
  t.same(parseAll(['data:\ndata:\n\n']).messages, [frame('\n', '')])
})

t.test('comments, unknown fields and events without data are ignored', async (t) => {
  t.same(parseAll([': heartbeat\n\n:\nfoo: bar\nid: s:0\n\ndata: x\n\n']).messages, [frame('x', 's:0')],
    'the id of a frame without data is kept for the next one')
  t.same(parseAll(['event: progress\n\ndata: y\n\n']).messages, [frame('y', '')], 'an event name without data is dropped with it')
})

t.test('event names, and the id kept across events like EventSource does', async (t) => {
  t.same(parseAll(['event: start\nid: s:0\ndata: a\n\ndata: b\n\nevent: complete\nid: s:2\ndata: c\n\n']).messages, [
    frame('a', 's:0', 'start'),
    frame('b', 's:0'),
    frame('c', 's:2', 'complete'),
  ])
  t.same(parseAll(['id: s:0\ndata: a\n\nid\ndata: b\n\n']).messages, [frame('a', 's:0'), frame('b', '')], 'an empty id resets it')
  t.same(parseAll(['id: s:0\ndata: a\n\nid: s\u0000:1\ndata: b\n\n']).messages, [frame('a', 's:0'), frame('b', 's:0')],
    'an id with NUL is ignored')
})

t.test('retry: ASCII digits only', async (t) => {
  t.same(parseAll(['retry: 250\nretry: 1e3\nretry: -5\nretry:\nretry: 10 \nretry:0\ndata: x\n\n']).retries, [250, 0])
  t.same(feeder().push('retry: 5\ndata: x\n\n'), [frame('x', '')], 'no onRetry given')
})

t.test('a BOM is dropped at the start of the stream only', async (t) => {
  t.same(parseAll(['\uFEFFdata: x\n\n']).messages, [frame('x', '')])
  t.same(parseAll(['\uFEFF', 'data: x\n\n']).messages, [frame('x', '')], 'alone in the first chunk')
  // Later, U+FEFF is an ordinary character: this line's field is "\uFEFFdata", unknown.
  t.same(parseAll(['data: a\n\n', '\uFEFFdata: b\n\n']).messages, [frame('a', '')])
  t.same(parseAll(['data: \uFEFFc\n\n']).messages, [frame('\uFEFFc', '')], 'inside a value it is kept')
})

t.test('the space after the colon: one is dropped, no more', async (t) => {
  t.same(parseAll(['data:x\n\ndata: x\n\ndata:  x\n\ndata:\tx\n\n']).messages,
    [frame('x', ''), frame('x', ''), frame(' x', ''), frame('\tx', '')])
  t.same(parseAll(['event:progress\ndata: a\n\nevent: progress\ndata: b\n\n']).messages,
    [frame('a', '', 'progress'), frame('b', '', 'progress')])
})

t.test('the event type is reset after each dispatch, and by events without data', async (t) => {
  t.same(parseAll(['event: a\ndata: 1\n\ndata: 2\n\nevent: b\n\ndata: 3\n\n']).messages,
    [frame('1', '', 'a'), frame('2', ''), frame('3', '')])
  t.same(parseAll(['event\ndata: x\n\n']).messages, [frame('x', '')], 'an empty event name is "message"')
})

t.test('nothing is dispatched without the final blank line', async (t) => {
  const parser = feeder()
  t.same(parser.push('id: s:0\ndata: a\n\ndata: b\n'), [frame('a', 's:0')])
  t.same(parser.push('data: c'), [], 'an unfinished line')
  t.same(parser.push('\n'), [], 'a finished line, no blank line')
})

t.test('unknown fields, field names with other case, and comments are ignored', async (t) => {
  t.same(parseAll(['Data: no\nDATA: no\n data: no\nfoo\nfoo:bar\n: comment\n:\ndata: yes\n\n']).messages, [frame('yes', '')])
})

// Events of arbitrary streams: the whole body and any split of it into
// chunks (also between a CR and its LF) dispatch the same events.
const fieldValue = fc.string({ unit: fc.constantFrom('a', 'b', ' ', ':', '\u00e9', '\u0000', '\uFEFF', '1', '\u{1F600}'), maxLength: 8 })
const lineEnd = fc.constantFrom('\n', '\r', '\r\n')
const line = fc.oneof(
  fc.tuple(fc.constantFrom('data', 'event', 'id', 'retry', 'foo', ''), fc.constantFrom(':', ': ', ''), fieldValue).map(([field, colon, value]) => `${field}${colon}${value}`),
  fc.constant('')
)
const body = fc.array(fc.tuple(line, lineEnd).map(([text, end]) => text + end), { maxLength: 30 }).map((lines) => lines.join(''))

function splitAt (text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b)
  const chunks: string[] = []
  let start = 0
  for (const cut of at) {
    chunks.push(text.slice(start, cut))
    start = cut
  }
  chunks.push(text.slice(start))
  return chunks
}

t.test('property: any chunking of a body dispatches what the whole body does', async (t) => {
  fc.assert(fc.property(body, fc.array(fc.nat(), { maxLength: 12 }), (text, cuts) =>
    isDeepStrictEqual(parseAll(splitAt(text, cuts)), parseAll([text]))), { numRuns: 2000 })
  fc.assert(fc.property(body, (text) => isDeepStrictEqual(parseAll([...text]), parseAll([text]))), { numRuns: 500 })
  t.pass('2,000 bodies split at random, 500 fed one character at a time')
})

t.test('property: the same events and retries as eventsource-parser, on any body', async (t) => {
  // An independent implementation of the same WHATWG rules (the one the
  // eventsource package is built on): they must never disagree.
  fc.assert(fc.property(body, (text) => {
    const events: Array<[string, string]> = []
    const retries: number[] = []
    const reference = createParser({
      onEvent: (event) => { events.push([event.event ?? 'message', event.data]) },
      onRetry: (ms) => { retries.push(ms) },
    })
    reference.feed(text)
    const ours = parseAll([text])
    return isDeepStrictEqual(ours.messages.map((m) => [m.type, m.data]), events) && isDeepStrictEqual(ours.retries, retries)
  }), { numRuns: 3000 })
  t.pass('3,000 bodies')
})

t.test('maxFrameLength bounds one event, its unfinished line and its data so far', async (t) => {
  const big = 'x'.repeat(100)
  const tooLarge = { name: 'StreamCommandError', code: 'FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE', message: /maxFrameLength \(100 characters\)/ }
  // The limit is per event: many events of the limit's size are fine.
  const ok = feeder({ maxFrameLength: 100 })
  for (let i = 0; i < 5; i++) t.same(ok.push(`data:${'y'.repeat(94)}\n\n`), [frame('y'.repeat(94), '')])
  t.equal(ok.error, undefined)

  const line = feeder({ maxFrameLength: 100 })
  t.same(line.push(`data:${big.slice(0, 95)}`), [], 'exactly at the limit')
  t.equal(line.error, undefined)
  t.same(line.push('x'), [], 'an unfinished line one past it')
  t.match(line.error, tooLarge)
  t.same(line.push('\n\ndata: more\n\n'), [], 'then it takes no more input')

  const lines = feeder({ maxFrameLength: 100 })
  t.same(lines.push(`data: ${big.slice(0, 60)}\n`), [])
  t.same(lines.push(`data: ${big.slice(0, 60)}\n`), [])
  t.match(lines.error, tooLarge, 'data lines that together pass it')

  // The events before the one too large are still returned, none after it.
  const inOneChunk = feeder({ maxFrameLength: 100 })
  t.same(inOneChunk.push(`data: a\n\ndata: ${big}${big}\n\ndata: b\n\n`), [frame('a', '')], 'a whole line in one chunk')
  t.match(inOneChunk.error, tooLarge)
  const tail = feeder({ maxFrameLength: 100 })
  t.same(tail.push(`data: a\n\ndata: ${big}${big}`), [frame('a', '')], 'an unfinished line after an event')
  t.match(tail.error, tooLarge)

  const withCr = feeder({ maxFrameLength: 100 })
  t.same(withCr.push(`data: a\r\rdata: ${big}${big}\r\rdata: b\r\r`), [frame('a', '')], 'CR line ends')
  t.match(withCr.error, tooLarge)
  const oneLine = feeder({ maxFrameLength: 100 })
  t.same(oneLine.push(`data: ${big}x\n\n`), [], 'a one-line event just past it')
  t.match(oneLine.error, tooLarge)

  t.same(feeder().push(`data: ${big.repeat(1000)}\n\n`), [frame(big.repeat(1000), '')], 'no limit by default')
})

t.test('an 8 MiB line in 16 Ki pieces is parsed in one pass', async (t) => {
  // Linear, not quadratic: the pieces are joined once. A re-scan per piece
  // made this take seconds; the bench measures it, this checks the result.
  const data = 'z'.repeat(8 * 1024 * 1024)
  const text = `id: s:1\ndata: ${data}\n\n`
  const parser = feeder()
  const messages: SseMessage[] = []
  for (let at = 0; at < text.length; at += 16 * 1024) messages.push(...parser.push(text.slice(at, at + 16 * 1024)))
  t.equal(messages.length, 1)
  t.equal(messages[0]!.data.length, data.length)
  t.equal(messages[0]!.data, data)
})
