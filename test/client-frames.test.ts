import t from 'tap'
import { StreamCommandError } from '../src/client/client-errors.js'
import { parseFrame } from '../src/client/frames.js'

// How the client reads each frame of the wire format, and what it refuses.

t.test('the four frame types, with the SSE id added', async (t) => {
  t.same(parseFrame('{"type":"start","streamId":"s"}', 's:0'), { type: 'start', streamId: 's', id: 's:0' })
  t.same(parseFrame('{"type":"start","streamId":"s","cancelUrl":"/orders/s"}', 's:0'),
    { type: 'start', streamId: 's', id: 's:0', cancelUrl: '/orders/s' })
  t.same(parseFrame('{"type":"start","streamId":"s","cancelUrl":5}', 's:0'), { type: 'start', streamId: 's', id: 's:0' },
    'a cancelUrl that is not a string is left out')
  t.same(parseFrame('{"type":"progress","data":{"n":1}}', 's:1'), { type: 'progress', data: { n: 1 }, id: 's:1' })
  t.same(parseFrame('{"type":"complete"}', 's:2'), { type: 'complete', id: 's:2' })
  t.same(parseFrame('{"type":"error","error":{"code":"X","message":"m"}}', 's:2'),
    { type: 'error', id: 's:2', error: { code: 'X', message: 'm' } })
})

t.test('a frame type this client does not know is skipped', async (t) => {
  t.equal(parseFrame('{"type":"checkpoint"}', 's:3'), undefined)
})

t.test('data that is not a frame throws FST_ERR_CQRS_STREAM_PROTOCOL', async (t) => {
  for (const data of [
    'not json', '5', 'null', '{"streamId":"s"}', '{"type":"start"}',
    '{"type":"error"}', '{"type":"error","error":null}', '{"type":"error","error":{"code":1,"message":"m"}}',
    '{"type":"error","error":{"code":"X"}}',
  ]) {
    t.throws(() => parseFrame(data, 's:0'), { name: 'StreamCommandError', code: 'FST_ERR_CQRS_STREAM_PROTOCOL' }, data)
  }
  const error = t.throws(() => parseFrame('x'.repeat(500), 's:0')) as StreamCommandError
  t.ok(error instanceof StreamCommandError)
  t.equal(error.message, `fastify-cqrs-stream: not a frame of this package: ${'x'.repeat(200)}`, 'the data, cut')
  t.equal(error.streamId, undefined)
  t.equal(error.statusCode, undefined)
})
