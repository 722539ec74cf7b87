import { setTimeout as sleep } from 'node:timers/promises'
import { EventSource } from 'eventsource'
import t from 'tap'
import type { FastifyReply } from 'fastify'
import type { Teardown } from './fixtures/app-orders.js'
import { streamCommand, type StreamCommandOptions } from '../src/client/index.js'
import { aborted, clientApp, collect, rawStream, rejection } from './fixtures/client-app.js'
import { eventually } from './fixtures/sse-client.js'
import { frames } from './fixtures/sse-app.js'

// Leaving a stream: the signal aborting, or breaking out of for await,
// closes the connection (the server's handler sees it at once) and cancels
// a resumable stream through the start frame's cancelUrl; a stream that
// finished is left alone.

const GRACE_MS = 1000

/** An app whose /hold stream sends one item, then waits until its client leaves; counts the aborts. */
async function holdingApp (t: Teardown) {
  const kit = await clientApp(t)
  const counts = { aborts: 0 }
  const hold = (_request: unknown, reply: FastifyReply) => reply.eventStream(async function * ({ signal }) {
    signal.addEventListener('abort', () => { counts.aborts++ })
    yield { n: 1 }
    await aborted(signal)
  })
  kit.app.get('/hold', hold)
  kit.app.post('/hold', hold)
  return { ...kit, counts, base: await kit.start() }
}

/** An app with a hand-written resumable stream: its start frame carries `cancelUrl`; DELETEs are counted. */
async function cancellableApp (t: Teardown, text: string) {
  const kit = await clientApp(t)
  const deletes: string[] = []
  const closed = { count: 0 }
  kit.app.get('/jobs/run', (_request, reply) => {
    reply.raw.on('close', () => { closed.count++ })
    return rawStream(reply, text)
  })
  kit.app.delete('/jobs/cancel/:id', (request, reply) => {
    deletes.push(request.url)
    return reply.code(204).send()
  })
  return { ...kit, deletes, closed, base: await kit.start() }
}

const RESUMABLE = 'retry: 10\n' + frames('s', [{ type: 'start', streamId: 's', cancelUrl: 'cancel/s' }, { type: 'progress', data: 1 }])

for (const via of ['fetch', 'EventSource'] as const) {
  const options: StreamCommandOptions = via === 'fetch' ? { body: {} } : { EventSource }
  const method = via === 'fetch' ? 'POST' : 'GET'

  t.test(`${via}: aborting rejects with the reason and aborts the handler on the server`, async (t) => {
    const { base, counts, requests } = await holdingApp(t)
    const controller = new AbortController()
    const reason = new Error('cancelled by the user')
    const types: string[] = []
    const error = await rejection((async () => {
      for await (const frame of streamCommand(`${base}/hold`, { ...options, signal: controller.signal })) {
        types.push(frame.type)
        if (frame.type === 'progress') controller.abort(reason)
      }
    })())
    t.equal(error, reason, 'the signal\'s reason itself')
    t.same(types, ['start', 'progress'])
    await eventually(() => counts.aborts === 1, 'the handler\'s signal to abort')
    t.match(requests, [{ method, url: '/hold' }])
    t.equal(requests.length, 1)
  })

  t.test(`${via}: breaking out of for await closes the connection`, async (t) => {
    const { base, counts } = await holdingApp(t)
    for await (const frame of streamCommand(`${base}/hold`, options)) {
      if (frame.type === 'progress') break
    }
    await eventually(() => counts.aborts === 1, 'the handler\'s signal to abort')
    t.pass('the server saw the client leave')
  })
}

t.test('a signal aborted before the first pull: rejects with its reason, no request', async (t) => {
  const { base, requests } = await holdingApp(t)
  const reason = new Error('too late')
  const iterator = streamCommand(`${base}/hold`, { signal: AbortSignal.abort(reason) })
  t.equal(await rejection(iterator.next()), reason)
  t.equal(requests.length, 0)
})

t.test('abort on a resumable stream: closes and sends DELETE cancelUrl (resolved against the stream url)', async (t) => {
  for (const EventSourceClass of [undefined, EventSource]) {
    const via = EventSourceClass === undefined ? 'fetch' : 'EventSource'
    const { base, deletes, requests } = await cancellableApp(t, RESUMABLE)
    const controller = new AbortController()
    const iterator = streamCommand(`${base}/jobs/run`, { EventSource: EventSourceClass, signal: controller.signal })
    t.match(await iterator.next(), { value: { type: 'start', cancelUrl: 'cancel/s' } }, via)
    // The caller is not pulling: the abort alone closes and cancels.
    const reason = new Error('stop')
    controller.abort(reason)
    await eventually(() => deletes.length === 1, 'the DELETE')
    t.same(deletes, ['/jobs/cancel/s'], via)
    t.equal(await rejection(iterator.next()), reason, via)
    await sleep(100)
    t.same(requests.map((request) => request.method), ['GET', 'DELETE'], `${via}: one DELETE, no reconnect`)
  }
})

t.test('break on a resumable stream sends the DELETE too; a DELETE that fails is ignored', async (t) => {
  const { base, deletes } = await cancellableApp(t, RESUMABLE)
  for await (const frame of streamCommand(`${base}/jobs/run`)) {
    if (frame.type === 'progress') break
  }
  await eventually(() => deletes.length === 1, 'the DELETE')

  let failedDeletes = 0
  const failing: typeof fetch = (input, init) => {
    if (init?.method === 'DELETE') {
      failedDeletes++
      return Promise.reject(new TypeError('fetch failed'))
    }
    return fetch(input, init)
  }
  for await (const frame of streamCommand(`${base}/jobs/run`, { fetch: failing })) {
    if (frame.type === 'progress') break
  }
  t.equal(failedDeletes, 1, 'sent, failed, and nothing came of it')
})

t.test('after complete or an error frame: the connection is closed by the client, not cancelled, not resumed', async (t) => {
  const start = { type: 'start', streamId: 's', cancelUrl: 'cancel/s' }
  for (const last of [{ type: 'complete' }, { type: 'error', error: { code: 'E', message: 'm' } }]) {
    for (const EventSourceClass of [undefined, EventSource]) {
      const via = `${last.type} via ${EventSourceClass === undefined ? 'fetch' : 'EventSource'}`
      // The response stays open after the last frame: the client closes it.
      const { base, requests, closed } = await cancellableApp(t, 'retry: 10\n' + frames('s', [start, last]))
      const controller = new AbortController()
      const settled = collect(streamCommand(`${base}/jobs/run`, { EventSource: EventSourceClass, signal: controller.signal }))
      await settled.catch(() => {})
      await eventually(() => closed.count === 1, `${via}: the client to close the connection`)
      controller.abort()
      await sleep(GRACE_MS / 4)
      t.same(requests.map((request) => request.method), ['GET'], via)
    }
  }
})

t.test('two-step: the cancelUrl resolves against the GET url of the 202', async (t) => {
  const { app, start, requests } = await clientApp(t)
  const deletes: string[] = []
  app.post('/jobs', (_request, reply) => reply.code(202).send({ streamId: 'j1', url: '/jobs/j1' }))
  app.get('/jobs/:id', (_request, reply) => rawStream(reply, frames('j1', [{ type: 'start', streamId: 'j1', cancelUrl: 'j1' }])))
  app.delete('/jobs/:id', (request, reply) => {
    deletes.push(request.url)
    return reply.code(204).send()
  })
  const base = await start()
  for await (const frame of streamCommand(`${base}/jobs`, { body: {} })) {
    if (frame.type === 'start') break
  }
  await eventually(() => deletes.length === 1, 'the DELETE')
  t.same(requests.map((request) => `${request.method} ${request.url}`), ['POST /jobs', 'GET /jobs/j1', 'DELETE /jobs/j1'])
})
