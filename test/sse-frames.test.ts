import t from 'tap'
import { errors } from '../src/index.js'
import { encodeData, HEARTBEAT, isSafeFieldValue } from '../src/sse/frame.js'
import { FrameEncoder } from '../src/sse/frame-encoder.js'
import { isFailure, toPublicError } from '../src/sse/public-error.js'
import { parseSse, payload } from './fixtures/sse-parser.js'

const SERIALIZATION = 'FST_ERR_CQRS_STREAM_SERIALIZATION'
const HANDLER_FAILED = 'FST_ERR_CQRS_STREAM_HANDLER_FAILED'

t.test('frame.ts', async (t) => {
  t.test('data with LF, CR or CRLF becomes one data: line per line', async (t) => {
    for (const [name, br] of [['LF', '\n'], ['CR', '\r'], ['CRLF', '\r\n']]) {
      t.equal(encodeData(`a${br}b${br}c`), 'data: a\ndata: b\ndata: c\n', name)
    }
    t.equal(encodeData('a\r\n\nb\r'), 'data: a\ndata: \ndata: b\ndata: \n', 'mixed and trailing breaks keep empty lines')
    t.equal(encodeData('one line'), 'data: one line\n')
    t.equal(encodeData(''), 'data: \n', 'an empty data line still dispatches the event')
  })

  t.test('a client rebuilds multi-line data with LF between the lines', async (t) => {
    const frames = parseSse(`id: 7\n${encodeData('a\rb\r\nc\nd')}\n`).frames
    t.same(frames, [{ id: '7', data: 'a\nb\nc\nd' }])
  })

  t.test('id and event values refuse CR, LF and NUL', async (t) => {
    for (const bad of ['a\rb', 'a\nb', 'a\r\nb', 'a\0b', '\n']) t.equal(isSafeFieldValue(bad), false, JSON.stringify(bad))
    t.equal(isSafeFieldValue('stream-1:0 ü'), true)
    t.equal(isSafeFieldValue(''), true)
  })

  t.test('HEARTBEAT is a comment line alone: no frame, nothing dispatched, no blank line', async (t) => {
    // A blank line after it is what fetch-event-source dispatches as an empty message.
    t.equal(HEARTBEAT, ':\n')
    const parsed = parseSse(`${HEARTBEAT}${encodeData('x')}\n${HEARTBEAT}`)
    t.same(parsed.frames, [{ data: 'x' }])
    t.equal(parsed.comments, 2)
  })
})

t.test('FrameEncoder', async (t) => {
  t.test('start, progress and complete frames with ids <streamId>:0..n', async (t) => {
    const encoder = new FrameEncoder<unknown>({ streamId: 's1' })
    t.equal(encoder.start(), 'id: s1:0\ndata: {"type":"start","streamId":"s1"}\n\n')
    t.equal(encoder.progress({ orderId: 'a', n: 1 }), 'id: s1:1\ndata: {"type":"progress","data":{"orderId":"a","n":1}}\n\n')
    t.equal(encoder.progress('two'), 'id: s1:2\ndata: {"type":"progress","data":"two"}\n\n')
    t.equal(encoder.progress(3), 'id: s1:3\ndata: {"type":"progress","data":3}\n\n')
    t.equal(encoder.complete(), 'id: s1:4\ndata: {"type":"complete"}\n\n')
  })

  t.test('the start frame holds id 0 even when built once and read twice', async (t) => {
    const encoder = new FrameEncoder<number>({ streamId: 'x' })
    t.equal(encoder.start(), encoder.start())
    t.equal(encoder.progress(1), 'id: x:1\ndata: {"type":"progress","data":1}\n\n')
  })

  t.test('error frame: code and message only', async (t) => {
    const encoder = new FrameEncoder<unknown>({ streamId: 's' })
    encoder.start()
    t.equal(encoder.error({ code: 'E_X', message: 'line one\nline "two"' }),
      'id: s:1\ndata: {"type":"error","error":{"code":"E_X","message":"line one\\nline \\"two\\""}}\n\n')
  })

  t.test('namedEvents adds event: lines to every frame', async (t) => {
    const encoder = new FrameEncoder<unknown>({ streamId: 's', namedEvents: true })
    t.equal(encoder.start(), 'id: s:0\nevent: start\ndata: {"type":"start","streamId":"s"}\n\n')
    t.equal(encoder.progress(1), 'id: s:1\nevent: progress\ndata: {"type":"progress","data":1}\n\n')
    t.equal(encoder.complete(), 'id: s:2\nevent: complete\ndata: {"type":"complete"}\n\n')
    t.equal(encoder.error({ code: 'E', message: 'm' }), 'id: s:3\nevent: error\ndata: {"type":"error","error":{"code":"E","message":"m"}}\n\n')
  })

  t.test('namedEvents: false is the default', async (t) => {
    t.equal(new FrameEncoder({ streamId: 's', namedEvents: false }).start(), new FrameEncoder({ streamId: 's' }).start())
  })

  t.test('retryMs adds retry: to the start frame only', async (t) => {
    const encoder = new FrameEncoder<number>({ streamId: 's', retryMs: 2500 })
    t.equal(encoder.start(), 'id: s:0\nretry: 2500\ndata: {"type":"start","streamId":"s"}\n\n')
    t.equal(encoder.progress(1), 'id: s:1\ndata: {"type":"progress","data":1}\n\n')
    t.equal(encoder.complete(), 'id: s:2\ndata: {"type":"complete"}\n\n')
    t.equal(new FrameEncoder({ streamId: 's', retryMs: 0, namedEvents: true }).start(),
      'id: s:0\nevent: start\nretry: 0\ndata: {"type":"start","streamId":"s"}\n\n', 'retry 0 is sent')
  })

  t.test('undefined and function items are sent as null', async (t) => {
    const encoder = new FrameEncoder<unknown>({ streamId: 's' })
    t.equal(encoder.progress(undefined), 'id: s:1\ndata: {"type":"progress","data":null}\n\n')
    t.equal(encoder.progress(() => 1), 'id: s:2\ndata: {"type":"progress","data":null}\n\n')
    t.equal(encoder.progress(null), 'id: s:3\ndata: {"type":"progress","data":null}\n\n')
  })

  t.test('strings with line breaks stay on one data: line (JSON escapes them)', async (t) => {
    const encoder = new FrameEncoder<string>({ streamId: 's' })
    const frame = encoder.progress('a\r\nb\u2028c')
    const frames = parseSse(frame).frames
    t.equal(frames.length, 1)
    t.same(payload(frames[0]!), { type: 'progress', data: 'a\r\nb\u2028c' })
  })

  t.test('the streamId is JSON-escaped in the start data', async (t) => {
    const encoder = new FrameEncoder<unknown>({ streamId: 'a"b\\c' })
    const [frame] = parseSse(encoder.start()).frames
    t.equal(frame!.id, 'a"b\\c:0')
    t.same(payload(frame!), { type: 'start', streamId: 'a"b\\c' })
  })

  t.test('BigInt and circular items throw SerializationError and burn no id', async (t) => {
    const encoder = new FrameEncoder<unknown>({ streamId: 's' })
    const circular: Record<string, unknown> = { a: 1 }
    circular.self = circular
    for (const item of [{ n: 1n }, 10n, circular]) {
      const error = t.throws(() => encoder.progress(item)) as InstanceType<typeof errors.SerializationError>
      t.equal(error.code, SERIALIZATION)
      t.ok(error instanceof errors.SerializationError)
      t.type(error.cause, TypeError, 'keeps the JSON error as cause')
    }
    t.equal(encoder.progress(1), 'id: s:1\ndata: {"type":"progress","data":1}\n\n', 'the next frame takes the next id')
  })

  t.test('a serializer that throws gives SerializationError', async (t) => {
    const cause = new Error('nope')
    const encoder = new FrameEncoder<number>({ streamId: 's', serialize: () => { throw cause } })
    const error = t.throws(() => encoder.progress(1)) as InstanceType<typeof errors.SerializationError>
    t.equal(error.code, SERIALIZATION)
    t.equal(error.cause, cause)
  })

  t.test('an untrusted serializer is checked for line breaks and non-strings', async (t) => {
    const outputs: unknown[] = ['{"a":\n1}', '"a\rb"', '"a"\r\n', 42]
    for (const output of outputs) {
      const encoder = new FrameEncoder<number>({ streamId: 's', untrusted: true, serialize: () => output as string })
      const error = t.throws(() => encoder.progress(1), JSON.stringify(output)) as { code?: string }
      t.equal(error.code, SERIALIZATION, JSON.stringify(output))
    }
    const ok = new FrameEncoder<number>({ streamId: 's', untrusted: true, serialize: (n) => `{"n":${n}}` })
    t.equal(ok.progress(5), 'id: s:1\ndata: {"type":"progress","data":{"n":5}}\n\n')
  })

  t.test('a trusted serializer is used as is', async (t) => {
    const encoder = new FrameEncoder<{ n: number }>({ streamId: 's', serialize: (item) => `{"n":${item.n},"t":true}` })
    t.equal(encoder.progress({ n: 2 }), 'id: s:1\ndata: {"type":"progress","data":{"n":2,"t":true}}\n\n')
  })

  t.test('a streamId with CR, LF or NUL is refused', async (t) => {
    for (const streamId of ['a\nb', 'a\rb', 'a\r\nb', 'a\0b']) {
      t.throws(() => new FrameEncoder({ streamId }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION' }, JSON.stringify(streamId))
    }
  })

  t.test('a whole stream parses into exactly the encoded frames', async (t) => {
    const encoder = new FrameEncoder<unknown>({ streamId: 'p', namedEvents: true, retryMs: 10 })
    const body = encoder.start() + encoder.progress({ text: 'ü\n€' }) + encoder.error(toPublicError(new Error('x')))
    t.same(parseSse(body).frames, [
      { id: 'p:0', event: 'start', retry: '10', data: '{"type":"start","streamId":"p"}' },
      { id: 'p:1', event: 'progress', data: '{"type":"progress","data":{"text":"ü\\n€"}}' },
      { id: 'p:2', event: 'error', data: JSON.stringify({ type: 'error', error: toPublicError(undefined) }) },
    ])
  })
})

t.test('toPublicError', async (t) => {
  const generic = new errors.HandlerFailedError()
  const fallback = { code: HANDLER_FAILED, message: generic.message }

  t.test('own coded errors keep code and message, nothing else', async (t) => {
    const own = [
      new errors.ShutdownError(),
      new errors.StreamAbortedError(),
      new errors.InvalidMessageError('X', 'bad'),
    ]
    for (const error of own) {
      const shown = toPublicError(error)
      t.same(shown, { code: error.code, message: error.message }, error.code)
      t.same(Object.keys(shown).sort(), ['code', 'message'])
    }
    // Its message is for the log (routes, schemas, fields): the client gets a generic one.
    t.same(toPublicError(new errors.SerializationError('route POST /x yielded an item that does not match R: /n must be integer', { cause: new Error('inner secret') })), {
      code: SERIALIZATION, message: 'fastify-cqrs-stream: the server could not send a result. The server log has the details.',
    })
    t.same(toPublicError({ code: 'FST_ERR_CQRS_STREAM_CUSTOM', message: 'm' }), { code: 'FST_ERR_CQRS_STREAM_CUSTOM', message: 'm' })
  })

  t.test('expose: true keeps the message, and the code when it is a string', async (t) => {
    const withCode = Object.assign(new Error('out of stock'), { code: 'E_STOCK', expose: true, statusCode: 409 })
    t.same(toPublicError(withCode), { code: 'E_STOCK', message: 'out of stock' })
    const numericCode = Object.assign(new Error('bad input'), { code: 42, expose: true })
    t.same(toPublicError(numericCode), { code: HANDLER_FAILED, message: 'bad input' })
    const noCode = Object.assign(new Error('shown'), { expose: true })
    t.same(toPublicError(noCode), { code: HANDLER_FAILED, message: 'shown' })
  })

  t.test('anything else becomes the generic HANDLER_FAILED', async (t) => {
    const hidden: unknown[] = [
      new Error('db password is hunter2'),
      Object.assign(new Error('socket'), { code: 'ECONNRESET' }),
      Object.assign(new Error('fastify'), { code: 'FST_ERR_VALIDATION' }),
      Object.assign(new Error('truthy but not true'), { expose: 'yes' }),
      { expose: true, message: 42, code: 'E' },
      { code: 'FST_ERR_CQRS_STREAM_X' },
      'a string', 42, null, undefined, Symbol('s'),
    ]
    for (const error of hidden) {
      t.same(toPublicError(error), fallback, String(error))
    }
  })

  t.test('never a stack', async (t) => {
    const errorsToShow = [
      new Error('x'), new errors.ShutdownError(), Object.assign(new Error('e'), { expose: true, code: 'E' }),
    ]
    for (const error of errorsToShow) {
      const text = JSON.stringify(toPublicError(error))
      t.notMatch(text, /stack|\bat /)
      t.notMatch(text, /\.ts:\d+/)
    }
  })

  t.test('isFailure: aborts and shutdowns are not failures', async (t) => {
    t.equal(isFailure(new errors.StreamAbortedError()), false)
    t.equal(isFailure(new errors.ShutdownError()), false)
    t.equal(isFailure(new errors.HandlerFailedError()), true)
    t.equal(isFailure(new Error('x')), true)
    t.equal(isFailure(null), true)
    t.equal(isFailure(undefined), true)
    t.equal(isFailure('text'), true)
  })
})
