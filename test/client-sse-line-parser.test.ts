import t from 'tap'
import { SseLineParser, type SseMessage } from '../src/client/sse-line-parser.js'

// The client's parser against the WHATWG rules: every line ending, chunks
// split anywhere, and the fields a browser's EventSource ignores.

function parseAll (chunks: string[]): { messages: SseMessage[], retries: number[] } {
  const retries: number[] = []
  const parser = new SseLineParser((ms) => { retries.push(ms) })
  return { messages: chunks.flatMap((chunk) => parser.push(chunk)), retries }
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
  const parser = new SseLineParser()
  t.same(parser.push('data: x\r\r'), [frame('x', '')], 'dispatched on the CR')
  t.same(parser.push('\ndata: y\n\n'), [frame('y', '')], 'the LF after it ends no line')
})

t.test('a CR at the end of a chunk, an empty chunk, then the LF: one line end', async (t) => {
  const parser = new SseLineParser()
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
  t.same(new SseLineParser().push('retry: 5\ndata: x\n\n'), [frame('x', '')], 'no onRetry given')
})
