// reply.eventStream over real sockets: what inject cannot show (a client
// leaving, a client not reading, heartbeats, server shutdown, TCP reads that
// hold several frames).
import { createHook } from 'node:async_hooks'
import type { ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { errors } from '../src/index.js'
import { frames, sseApp } from './fixtures/sse-app.js'
import { deferred, eventually, listen, openSse, within } from './fixtures/sse-client.js'
import { payload } from './fixtures/sse-parser.js'

const START = (streamId: string): unknown => ({ type: 'start', streamId })
const PROGRESS = (data: unknown): unknown => ({ type: 'progress', data })
const COMPLETE = { type: 'complete' }
const shutdown = new errors.ShutdownError()
const SHUTDOWN_FRAME = { type: 'error', error: { code: shutdown.code, message: shutdown.message } }

function codeOf (reason: unknown): unknown {
  return (reason as { code?: unknown } | undefined)?.code
}

/** Resolves when `signal` aborts. */
function aborted (signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
}

t.test('client disconnect mid-stream aborts the signal and runs the finally block', async (t) => {
  const { app, logs } = await sseApp(t)
  const finallyRan = deferred<unknown>()
  app.get('/s', (_request, reply) => reply.eventStream(async function * ({ signal }) {
    try {
      yield 'first'
      await aborted(signal)
      yield 'after abort'
    } finally {
      finallyRan.resolve(signal.reason)
    }
  }, { streamId: 'd' }))
  const port = await listen(app)
  const client = await openSse(port, '/s')
  await client.until(() => client.parser.frames.length === 2, 'the first progress frame')
  client.destroy()
  const reason = await within(finallyRan.promise, 'the source finally block')
  t.equal(codeOf(reason), 'FST_ERR_CQRS_STREAM_ABORTED')
  t.equal(client.body(), frames('d', [START('d'), PROGRESS('first')]))
  t.same(logs, [], 'a client leaving is not an error')
})

t.test('client disconnect while the source awaits a signal-aware call: it rejects, nothing is logged', async (t) => {
  const { app, logs } = await sseApp(t)
  const finallyRan = deferred<unknown>()
  app.get('/s', (_request, reply) => reply.eventStream(async function * ({ signal }) {
    try {
      yield 'first'
      await sleep(60_000, undefined, { signal })
      yield 'never'
    } catch (error) {
      finallyRan.resolve(error)
      throw error
    }
  }, { streamId: 'a' }))
  const port = await listen(app)
  const client = await openSse(port, '/s')
  await client.until(() => client.parser.frames.length === 2, 'the first progress frame')
  client.destroy()
  const error = await within(finallyRan.promise, 'the source to see the abort')
  t.equal((error as Error).name, 'AbortError')
  t.equal(codeOf((error as Error).cause), 'FST_ERR_CQRS_STREAM_ABORTED', 'the abort reason is the package error')
  // Give a wrongly logged failure the chance to show.
  await nextTurn()
  t.same(logs, [], 'the rejection after the abort is not logged as a failure')
})

t.test('client disconnect stops a source that ignores the signal at its next yield', async (t) => {
  const { app } = await sseApp(t)
  const finallyRan = deferred()
  let pulled = 0
  let pulledAfterAbort = 0
  app.get('/s', (_request, reply) => reply.eventStream(async function * ({ signal }) {
    try {
      for (let i = 0; ; i++) {
        yield i
        pulled++
        if (signal.aborted) pulledAfterAbort++
        await sleep(2)
      }
    } finally {
      finallyRan.resolve()
    }
  }))
  const port = await listen(app)
  const client = await openSse(port, '/s')
  await client.until(() => client.parser.frames.length >= 4, 'three progress frames')
  client.destroy()
  await within(finallyRan.promise, 'the source finally block')
  t.ok(pulled >= 3)
  t.ok(pulledAfterAbort <= 1, `pulled ${pulledAfterAbort} items after the abort`)
})

t.test('a source whose finally throws on return() has the error logged', async (t) => {
  const { app, logs } = await sseApp(t)
  app.get('/s', (_request, reply) => reply.eventStream(async function * ({ signal }) {
    try {
      yield 1
      await aborted(signal)
      yield 2
    } finally {
      // eslint-disable-next-line no-unsafe-finally
      throw new Error('cleanup failed')
    }
  }))
  const port = await listen(app)
  const client = await openSse(port, '/s')
  await client.until(() => client.parser.frames.length === 2, 'the progress frame')
  client.destroy()
  await eventually(() => logs.length > 0, 'the error log')
  t.equal(logs.length, 1)
  t.equal(logs[0]!.err?.message, 'cleanup failed')
})

t.test('backpressure: a paused client stops the pull; resuming gets every frame in order', async (t) => {
  const { app } = await sseApp(t)
  const total = 320
  const itemBytes = 64 * 1024
  let raw: ServerResponse | undefined
  let pulled = 0
  let pulledWhileFull = 0
  app.get('/s', (_request, reply) => {
    raw = reply.raw as ServerResponse
    return reply.eventStream(async function * () {
      const pad = 'x'.repeat(itemBytes)
      for (let i = 0; i < total; i++) {
        yield { i, pad }
        pulled++
        if (raw!.writableNeedDrain) pulledWhileFull++
      }
    }, { streamId: 'bp', heartbeatMs: 20 })
  })
  const port = await listen(app)
  const client = await openSse(port, '/s', { paused: true })
  // The kernel's socket buffers take a few MB; then write() says "full".
  let last = -1
  await eventually(() => {
    const settled = raw?.writableNeedDrain === true && pulled === last
    last = pulled
    return settled
  }, 'the writer to stop pulling', 20_000)
  await sleep(50)
  t.equal(pulled, last, 'nothing more was pulled while the client did not read')
  t.ok(pulled < total / 2, `pulled ${pulled} of ${total} items (${(pulled * itemBytes / 2 ** 20).toFixed(1)} MiB) while paused`)
  t.equal(pulledWhileFull, 0, 'no item was pulled while the response buffer was full')
  const queued = raw!.writableLength
  t.ok(queued < 256 * 1024, `${queued} bytes queued in the process, not in the kernel`)
  await sleep(100)
  t.equal(raw!.writableLength, queued, 'no heartbeat is queued while the buffer is full')

  client.resume()
  await within(client.ended, 'the whole body', 20_000)
  const got = client.parser.frames
  t.equal(got.length, total + 2)
  t.same(got.map((frame) => frame.id), Array.from({ length: total + 2 }, (_, seq) => `bp:${seq}`), 'every id, in order, once')
  const items = got.slice(1, -1).map((frame) => (payload(frame).data as { i: number, pad: string }))
  t.ok(items.every((item, index) => item.i === index && item.pad.length === itemBytes), 'every item intact, in order')
  t.same(payload(got.at(-1)!), COMPLETE)
})

t.test('a drain that comes while the source is busy is not missed', async (t) => {
  // Items smaller than one write are flushed on the next tick: the write that
  // fills the buffer can happen while the source is still awaiting, and the
  // client may have drained the buffer before the source yields again.
  const { app } = await sseApp(t)
  const full = deferred()
  const gate = deferred()
  let raw: ServerResponse | undefined
  let pulled = 0
  app.get('/s', (_request, reply) => {
    raw = reply.raw as ServerResponse
    return reply.eventStream(async function * () {
      const pad = 'y'.repeat(8 * 1024)
      for (;;) {
        yield pad
        pulled++
        await nextTurn()
        if (raw!.writableNeedDrain) break
      }
      full.resolve()
      await gate.promise
      yield 'after-drain-1'
      yield 'after-drain-2'
    }, { streamId: 'r' })
  })
  const port = await listen(app)
  const client = await openSse(port, '/s', { paused: true })
  await within(full.promise, 'the response buffer to fill', 20_000)
  client.resume()
  await client.until(() => client.parser.frames.length === pulled + 1, 'every item sent so far')
  await eventually(() => raw!.writableNeedDrain === false, 'the drain')
  gate.resolve()
  await within(client.ended, 'the rest of the stream after the drain')
  const got = client.parser.frames.slice(-3).map(payload)
  t.same(got, [PROGRESS('after-drain-1'), PROGRESS('after-drain-2'), COMPLETE])
  t.equal(client.parser.frames.length, pulled + 4)
})

t.test('a client that leaves while the server waits for drain: the source is stopped', async (t) => {
  const { app } = await sseApp(t)
  const finallyRan = deferred<unknown>()
  let raw: ServerResponse | undefined
  let pulled = 0
  app.get('/s', (_request, reply) => {
    raw = reply.raw as ServerResponse
    return reply.eventStream(async function * ({ signal }) {
      try {
        const pad = 'z'.repeat(64 * 1024)
        for (;;) {
          yield pad
          pulled++
        }
      } finally {
        finallyRan.resolve(signal.reason)
      }
    })
  })
  const port = await listen(app)
  const client = await openSse(port, '/s', { paused: true })
  let last = -1
  await eventually(() => {
    const settled = raw?.writableNeedDrain === true && pulled === last
    last = pulled
    return settled
  }, 'the writer to wait for drain', 20_000)
  client.destroy()
  const reason = await within(finallyRan.promise, 'the source finally block')
  t.equal(codeOf(reason), 'FST_ERR_CQRS_STREAM_ABORTED')
})

t.test('heartbeat: an idle stream sends : comments between frames', async (t) => {
  const { app } = await sseApp(t)
  const gate = deferred()
  app.get('/s', (_request, reply) => reply.eventStream(async function * () {
    await gate.promise
    yield 'late'
  }, { streamId: 'h', heartbeatMs: 50 }))
  const port = await listen(app)
  const client = await openSse(port, '/s')
  await client.until(() => client.parser.comments >= 2, 'two heartbeats')
  gate.resolve()
  const body = await within(client.ended, 'the end')
  const beats = client.parser.comments
  t.ok(beats >= 2)
  t.equal(body, frames('h', [START('h')]) + ':\n'.repeat(beats) + frames('h', [PROGRESS('late'), COMPLETE], 1))
  t.same(client.parser.frames.map(payload), [START('h'), PROGRESS('late'), COMPLETE])
})

t.test('the heartbeat timer is gone once the stream ends, whichever way', async (t) => {
  // A unique period tells the writer's timer apart from every other timer.
  const period = 43_210
  const created = new Map<number, { destroyed: boolean }>()
  const hook = createHook({
    init (asyncId, type, _trigger, resource) {
      if (type === 'Timeout' && (resource as { _idleTimeout?: number })._idleTimeout === period) created.set(asyncId, { destroyed: false })
    },
    destroy (asyncId) {
      const timer = created.get(asyncId)
      if (timer !== undefined) timer.destroyed = true
    },
  }).enable()
  t.teardown(() => { hook.disable() })
  const { app } = await sseApp(t)
  const leave = deferred()
  app.get('/complete', (_request, reply) => reply.eventStream(async function * () { yield 1 }, { heartbeatMs: period }))
  app.get('/leave', (_request, reply) => reply.eventStream(async function * () {
    yield 1
    await leave.promise
  }, { heartbeatMs: period }))
  const port = await listen(app)

  const done = await openSse(port, '/complete')
  await within(done.ended, 'the complete stream')
  t.equal(created.size, 0, 'a stream written whole at its end needs no heartbeat timer')

  const client = await openSse(port, '/leave')
  await client.until(() => client.parser.frames.length === 2, 'the progress frame')
  t.equal(created.size, 1, 'one heartbeat timer for a stream that stays open')
  client.destroy()
  await eventually(() => [...created.values()].every((timer) => timer.destroyed), 'the timer of the left stream to go')
  leave.resolve()
})

t.test('app.close() with an open stream: SHUTDOWN frame, response ends, source stopped, close resolves', async (t) => {
  const { app, logs } = await sseApp(t)
  const finallyRan = deferred<unknown>()
  app.get('/s', (_request, reply) => reply.eventStream(async function * ({ signal }) {
    try {
      yield 'first'
      await aborted(signal)
      yield 'never sent'
    } finally {
      finallyRan.resolve(signal.reason)
    }
  }, { streamId: 'c' }))
  const port = await listen(app)
  const client = await openSse(port, '/s')
  await client.until(() => client.parser.frames.length === 2, 'the progress frame')
  await within(app.close(), 'app.close()')
  const body = await within(client.ended, 'the end of the response')
  t.equal(body, frames('c', [START('c'), PROGRESS('first'), SHUTDOWN_FRAME]))
  t.equal(codeOf(await within(finallyRan.promise, 'the source finally block')), 'FST_ERR_CQRS_STREAM_SHUTDOWN')
  t.same(logs, [], 'a shutdown is not logged as a failure')
})

t.test('app.close() does not wait for a source that ignores the signal', async (t) => {
  const { app } = await sseApp(t)
  app.get('/s', (_request, reply) => reply.eventStream(async function * () {
    yield 'first'
    await new Promise(() => {})
  }, { streamId: 'i' }))
  const port = await listen(app)
  const client = await openSse(port, '/s')
  await client.until(() => client.parser.frames.length === 2, 'the progress frame')
  await within(app.close(), 'app.close()')
  t.equal(await within(client.ended, 'the end of the response'), frames('i', [START('i'), PROGRESS('first'), SHUTDOWN_FRAME]))
})

t.test('several open streams all get the SHUTDOWN frame', async (t) => {
  const { app } = await sseApp(t)
  app.get<{ Params: { id: string } }>('/s/:id', (request, reply) => reply.eventStream(async function * ({ signal }) {
    yield request.params.id
    await aborted(signal)
  }, { streamId: request.params.id }))
  const port = await listen(app)
  const clients = await Promise.all(['a', 'b', 'c'].map((id) => openSse(port, `/s/${id}`)))
  await Promise.all(clients.map((client) => client.until(() => client.parser.frames.length === 2, 'the progress frame')))
  await within(app.close(), 'app.close()')
  for (const [index, id] of ['a', 'b', 'c'].entries()) {
    t.equal(await within(clients[index]!.ended, `stream ${id}`), frames(id, [START(id), PROGRESS(id), SHUTDOWN_FRAME]))
  }
})

t.test('a stream started while the app is closing gets the SHUTDOWN frame', async (t) => {
  const { app } = await sseApp(t)
  const entered = deferred()
  const release = deferred()
  const closing = deferred()
  const finallyRan = deferred()
  let entries = 0
  app.get('/s', async (_request, reply) => {
    if (++entries === 2) entered.resolve()
    await release.promise
    return reply.eventStream(async function * () {
      try {
        yield 'x'
        yield 'y'
      } finally {
        finallyRan.resolve()
      }
    }, { streamId: 'late' })
  })
  // A source function that throws at once: the stream has ended before the shutdown reaches it.
  app.get('/throws', async (_request, reply) => {
    if (++entries === 2) entered.resolve()
    await release.promise
    return reply.eventStream(() => { throw new Error('at once') }, { streamId: 'late2' })
  })
  // Runs after the plugin's own preClose hook.
  app.addHook('preClose', async () => { closing.resolve() })
  const port = await listen(app)
  const opening = openSse(port, '/s')
  const openingThrows = openSse(port, '/throws')
  await within(entered.promise, 'the handlers')
  const closed = app.close()
  await within(closing.promise, 'the preClose hooks')
  release.resolve()
  const client = await within(opening, 'the response headers')
  t.equal(await within(client.ended, 'the end of the response'), frames('late', [START('late'), SHUTDOWN_FRAME]))
  const throws = await within(openingThrows, 'the response headers')
  t.equal(await within(throws.ended, 'the end of the response'), frames('late2', [START('late2'), {
    type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_HANDLER_FAILED', message: new errors.HandlerFailedError().message },
  }]), 'the first end wins')
  await within(finallyRan.promise, 'the source finally block')
  await within(closed, 'app.close()')
})

t.test('a client gone before the stream starts: the source is never called', async (t) => {
  const { app } = await sseApp(t)
  const entered = deferred()
  const returned = deferred<boolean>()
  let called = false
  app.get('/s', async (request, reply) => {
    entered.resolve()
    await new Promise((resolve) => request.raw.socket.once('close', resolve))
    reply.eventStream(() => { called = true; return (async function * () {})() })
    returned.resolve(reply.raw.headersSent)
    return reply
  })
  const port = await listen(app)
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write('GET /s HTTP/1.1\r\nhost: localhost\r\naccept: text/event-stream\r\n\r\n')
  await within(entered.promise, 'the handler')
  socket.destroy()
  t.equal(await within(returned.promise, 'reply.eventStream to return'), false, 'no headers were written')
  t.notOk(called)
  await within(app.close(), 'app.close()')
})

t.test('frames coalesced into few TCP reads: 5,000 fast items arrive once, in order', async (t) => {
  const { app } = await sseApp(t)
  const total = 5000
  app.get('/s', (_request, reply) => reply.eventStream(async function * () {
    for (let i = 0; i < total; i++) yield { i, text: 'ü€😀\n' }
  }, { streamId: 'many' }))
  const port = await listen(app)
  const client = await openSse(port, '/s')
  await within(client.ended, 'the whole body', 20_000)
  const got = client.parser.frames
  t.equal(got.length, total + 2)
  t.same(got.map((frame) => frame.id), Array.from({ length: total + 2 }, (_, seq) => `many:${seq}`))
  const items = got.slice(1, -1).map((frame) => payload(frame).data as { i: number, text: string })
  t.ok(items.every((item, index) => item.i === index && item.text === 'ü€😀\n'), 'every item once, in order, intact')
  t.same(payload(got.at(-1)!), COMPLETE)
  t.ok(client.chunks() < total / 10, `${total + 2} frames arrived in ${client.chunks()} reads`)
})

t.test('a source that first reads signal after the client left finds it aborted', async (t) => {
  const { app } = await sseApp(t)
  const seen = deferred<{ aborted: boolean, code: unknown }>()
  const never = deferred()
  app.get('/late', (_request, reply) => reply.eventStream((context) => (async function * () {
    try {
      yield 1
      await never.promise
    } finally {
      // The first read of context.signal: after the run ended.
      seen.resolve({ aborted: context.signal.aborted, code: codeOf(context.signal.reason) })
    }
  })()))
  const port = await listen(app)
  const client = await openSse(port, '/late')
  await client.until(() => client.parser.frames.length === 2, 'the progress frame')
  client.destroy()
  let open = 1
  await eventually(() => {
    app.server.getConnections((_error, count) => { open = count })
    return open === 0
  }, 'the server to see the client leave')
  // The source was waiting, not at a yield: it runs on to its end.
  never.resolve()
  t.same(await within(seen.promise, 'the source to end'), { aborted: true, code: 'FST_ERR_CQRS_STREAM_ABORTED' })
})
