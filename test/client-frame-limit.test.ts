import { EventSource } from 'eventsource'
import t from 'tap'
import { streamCommand, StreamCommandError, type StreamFrame } from '../src/client/index.js'
import { clientApp, collect, rawStream, rejection } from './fixtures/client-app.js'
import { eventually } from './fixtures/sse-client.js'
import { frames } from './fixtures/sse-app.js'

// maxFrameLength: one event that grows past it ends the stream with
// FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE and cancels it on the server (a
// resume would bring the same frame). Read with fetch, it is caught while
// the frame is still arriving: its line never ends here.

const START = frames('s', [{ type: 'start', streamId: 's', cancelUrl: 'cancel/s' }])

async function limitApp (t: Parameters<typeof clientApp>[0], text: string) {
  const kit = await clientApp(t)
  const deletes: string[] = []
  const closed = { count: 0 }
  kit.app.route({
    method: ['GET', 'POST'],
    url: '/jobs/run',
    handler: (_request, reply) => {
      reply.raw.on('close', () => { closed.count++ })
      return rawStream(reply, text)
    },
  })
  kit.app.delete('/jobs/cancel/:id', (request, reply) => {
    deletes.push(request.url)
    return reply.code(204).send()
  })
  return { ...kit, deletes, closed, base: await kit.start() }
}

async function framesUntilError (iterator: AsyncIterable<StreamFrame>): Promise<{ types: string[], error: unknown }> {
  const types: string[] = []
  const error = await rejection((async () => { for await (const frame of iterator) types.push(frame.type) })())
  return { types, error }
}

t.test('fetch: a line that never ends is cut at the limit, the stream cancelled', async (t) => {
  // 2,000 characters of a data line, then nothing: the response stays open.
  const { base, deletes, closed, requests } = await limitApp(t, START + 'data: ' + 'x'.repeat(2000))
  const { types, error } = await framesUntilError(streamCommand(`${base}/jobs/run`, { body: {}, maxFrameLength: 1000 }))
  t.same(types, ['start'])
  t.ok(error instanceof StreamCommandError)
  t.match(error, {
    code: 'FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE',
    message: 'fastify-cqrs-stream: an event of the stream grew past maxFrameLength (1000 characters): raise the option if frames this large are expected.',
    streamId: undefined,
  })
  await eventually(() => deletes.length === 1 && closed.count === 1, 'the DELETE and the closed connection')
  t.same(deletes, ['/jobs/cancel/s'])
  t.equal(requests.filter((request) => request.method === 'POST').length, 1, 'no reconnect')
})

t.test('EventSource: a frame past the limit, once it arrived whole', async (t) => {
  const big = frames('s', [{ type: 'progress', data: 'y'.repeat(200) }], 1)
  const { base, deletes, requests } = await limitApp(t, START + big)
  const { types, error } = await framesUntilError(streamCommand(`${base}/jobs/run`, { EventSource, maxFrameLength: 100 }))
  t.same(types, ['start'])
  t.match(error, { code: 'FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE', message: /maxFrameLength \(100 characters\)/ })
  await eventually(() => deletes.length === 1, 'the DELETE')
  t.equal(requests.filter((request) => request.method === 'GET').length, 1, 'no reconnect')
})

t.test('the default is 16 Mi characters; Infinity turns the check off', async (t) => {
  const huge = 'z'.repeat(16 * 1024 * 1024)
  const { base } = await limitApp(t, START + 'data: ' + huge)
  const { error } = await framesUntilError(streamCommand(`${base}/jobs/run`, { body: {} }))
  t.match(error, { code: 'FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE', message: /maxFrameLength \(16777216 characters\)/ })

  const whole = START + frames('s', [{ type: 'progress', data: huge }, { type: 'complete' }], 1)
  const { app, start } = await clientApp(t)
  app.post('/big', (_request, reply) => rawStream(reply, whole, true))
  const received = await collect(streamCommand(`${await start()}/big`, { body: {}, maxFrameLength: Infinity }))
  t.same(received.map((frame) => frame.type), ['start', 'progress', 'complete'])
  t.equal((received[1] as { data: string }).data.length, huge.length)
})

t.test('maxFrameLength must be a positive integer or Infinity', async (t) => {
  for (const maxFrameLength of [0, -1, 1.5, Number.NaN, '10' as unknown as number, -Infinity]) {
    await t.rejects(collect(streamCommand('http://127.0.0.1:9/never', { maxFrameLength })), {
      code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION',
      message: `fastify-cqrs-stream: maxFrameLength must be a positive integer or Infinity, got ${String(maxFrameLength)}.`,
    }, String(maxFrameLength))
  }
})
