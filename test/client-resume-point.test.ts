// streamCommand({ resume }): a page that reloads picks up its stream from
// the last frame id it saved, against the real plugin. Nothing runs twice.
import { EventSource } from 'eventsource'
import t from 'tap'
import { streamCommand, StreamCommandError, type EventSourceConstructor, type StreamFrame } from '../src/client/index.js'
import { eventually, listen, openSse, startStreamId } from './fixtures/sse-client.js'
import { TicksCommand, ticksApp } from './fixtures/ticks-app.js'
import type { Teardown } from './fixtures/app-orders.js'

async function started (t: Teardown) {
  const { app, pacer } = await ticksApp(t)
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  app.streamRoute({ method: 'POST', url: '/ticks', request: TicksCommand, resume: true })
  const port = await listen(app)
  return { app, pacer, port, base: `http://127.0.0.1:${port}` }
}

/** A page that ran a stream to its first tick, saved where it was, and was reloaded (no cancel). */
async function reloadedAfterOneTick (port: number, method: 'GET' | 'POST') {
  const page = await openSse(port, method === 'GET' ? '/ticks?count=4' : '/ticks', method === 'GET' ? {} : { method, body: JSON.stringify({ count: 4 }) })
  const streamId = await startStreamId(page)
  await page.until(() => page.parser.frames.length === 2, 'the first tick')
  const cancelUrl = JSON.parse(page.parser.frames[0]!.data).cancelUrl as string
  const lastEventId = page.parser.frames[1]!.id!
  page.destroy()
  await page.ended.catch(() => {})
  return { streamId, lastEventId, cancelUrl }
}

for (const [name, method, options] of [
  ['EventSource (GET)', 'GET', { EventSource: EventSource as unknown as EventSourceConstructor }],
  ['fetch (GET)', 'GET', { EventSource: undefined }],
  ['fetch (POST)', 'POST', { body: { count: 4 } }],
] as const) {
  t.test(`${name}: resume picks up after the saved id; the command ran once`, async (t) => {
    const { pacer, port, base } = await started(t)
    pacer.hold()
    pacer.release(1)
    const saved = await reloadedAfterOneTick(port, method)
    t.equal(saved.lastEventId, `${saved.streamId}:1`)
    pacer.release()
    const received: StreamFrame[] = []
    for await (const frame of streamCommand(method === 'GET' ? `${base}/ticks?count=4` : `${base}/ticks`, { ...options, resume: saved })) received.push(frame)
    t.same(received, [
      { type: 'progress', data: { n: 1 }, id: `${saved.streamId}:2` },
      { type: 'progress', data: { n: 2 }, id: `${saved.streamId}:3` },
      { type: 'progress', data: { n: 3 }, id: `${saved.streamId}:4` },
      { type: 'complete', id: `${saved.streamId}:5` },
    ], 'no start frame, nothing twice')
    t.same({ runs: pacer.runs, aborts: pacer.aborts }, { runs: 1, aborts: 0 })
  })
}

t.test('a resume the server cannot serve (204) is FST_ERR_CQRS_STREAM_LOST, with fetch and EventSource', async (t) => {
  const { base } = await started(t)
  for (const EventSourceClass of [EventSource as unknown as EventSourceConstructor, undefined]) {
    const error = await streamCommand(`${base}/ticks?count=4`, { EventSource: EventSourceClass, resume: { lastEventId: 'gone:3' } }).next().catch((caught: unknown) => caught)
    t.ok(error instanceof StreamCommandError)
    t.equal((error as StreamCommandError).code, 'FST_ERR_CQRS_STREAM_LOST', EventSourceClass === undefined ? 'fetch' : 'EventSource')
  }
})

t.test('aborting a resumed stream cancels it on the server with the saved cancelUrl', async (t) => {
  const { pacer, port, base } = await started(t)
  pacer.hold()
  pacer.release(1)
  const saved = await reloadedAfterOneTick(port, 'GET')
  const controller = new AbortController()
  const iterator = streamCommand(`${base}/ticks?count=4`, { EventSource: undefined, resume: saved, signal: controller.signal })
  const next = iterator.next()
  await eventually(() => pacer.runs === 1, 'the run')
  controller.abort(new Error('left the page'))
  await t.rejects(next, /left the page/)
  await eventually(() => pacer.aborts === 1, 'the handler aborted by the DELETE')
})

t.test('resume.lastEventId must be a frame id', async (t) => {
  for (const lastEventId of ['', 'nocolon', 's:', 's:01', 's:-1', ':3']) {
    const error = await streamCommand('http://127.0.0.1:1/x', { resume: { lastEventId } }).next().catch((caught: unknown) => caught)
    t.equal((error as StreamCommandError).code, 'FST_ERR_CQRS_STREAM_INVALID_OPTION', JSON.stringify(lastEventId))
  }
})
