import { asValue, createContainer } from 'awilix'
import { Type } from '@sinclair/typebox'
import { EventSource } from 'eventsource'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import { Request, Response, StreamingRequestHandler, type StreamContext } from '../src/index.js'
import { streamCommand, type ReconnectInfo, type StreamFrame } from '../src/client/index.js'
import { aborted, clientApp, collect, rejection } from './fixtures/client-app.js'
import { deferred, eventually } from './fixtures/sse-client.js'

// The client against this package's own resumable and two-step routes
// (streamRoute with `resume` / `twoStep`): a socket the server drops
// mid-stream is resumed without a second execution, a two-step command is
// followed, and aborting cancels the stream through its cancelUrl.

class TickCommand extends Request(Type.Object({
  to: Type.Integer({ minimum: 1 }),
  /** Drop the socket once the client has this tick; 0: never. */
  dropAfter: Type.Integer({ minimum: 0 }),
  /** Wait for an abort after this many ticks; 0: never. */
  holdAfter: Type.Integer({ minimum: 0 }),
})) {}
class TickResult extends Response(Type.Object({ n: Type.Integer() })) {}

/** What the test steers and counts on the server. */
class Gate {
  executions = 0
  aborts = 0
  /** Resolved by the test once the client has the tick `dropAfter`. */
  drop = deferred()
}

class TickHandler extends StreamingRequestHandler<TickCommand, TickResult> {
  readonly #gate: Gate
  readonly #request: FastifyRequest

  constructor ({ gate, fastifyRequest }: { gate: Gate, fastifyRequest: FastifyRequest }) {
    super()
    this.#gate = gate
    this.#request = fastifyRequest
  }

  async * handle (command: TickCommand, { signal }: StreamContext): AsyncGenerator<TickResult> {
    this.#gate.executions++
    signal.addEventListener('abort', () => { this.#gate.aborts++ })
    for (let n = 1; n <= command.to; n++) {
      if (n - 1 === command.dropAfter && command.dropAfter > 0) {
        await this.#gate.drop.promise
        this.#request.raw.socket.destroy()
      }
      if (n - 1 === command.holdAfter && command.holdAfter > 0) await aborted(signal)
      yield new TickResult({ n })
    }
  }
}

async function tickApp (t: { teardown (fn: () => unknown): void }) {
  const gate = new Gate()
  const kit = await clientApp(t, {
    container: createContainer({ strict: true }).register({ gate: asValue(gate) }),
    requests: (map) => map.bind(TickCommand, TickHandler),
    retryMs: 20,
  })
  // Not one url for both: each resumable route adds its own DELETE <url>/:streamId.
  kit.app.streamRoute({ method: 'POST', url: '/ticks', request: TickCommand, response: TickResult, resume: { windowMs: 60_000 } })
  kit.app.streamRoute({ method: 'GET', url: '/ticks-get', request: TickCommand, response: TickResult, resume: { windowMs: 60_000 } })
  kit.app.streamRoute({ method: 'POST', url: '/two-step', request: TickCommand, response: TickResult, twoStep: true })
  return { ...kit, gate, base: await kit.start() }
}

const ids = (received: StreamFrame[]): string[] => received.map((frame) => frame.id.replace(/^.*:/, ''))

for (const via of ['fetch', 'EventSource'] as const) {
  t.test(`${via}: a socket dropped by the server mid-stream resumes, nothing repeated, nothing re-run`, async (t) => {
    const { base, gate, requests } = await tickApp(t)
    const command = { to: 4, dropAfter: 2, holdAfter: 0 }
    const options = via === 'fetch'
      ? { body: command }
      : { EventSource }
    const url = via === 'fetch' ? `${base}/ticks` : `${base}/ticks-get?to=4&dropAfter=2&holdAfter=0`
    const reconnecting: ReconnectInfo[] = []
    const received: StreamFrame[] = []
    for await (const frame of streamCommand(url, { ...options, onReconnecting: (info) => { reconnecting.push(info) } })) {
      received.push(frame)
      if (frame.type === 'progress' && (frame.data as { n: number }).n === 2) gate.drop.resolve()
    }
    const streamId = (received[0] as { streamId: string }).streamId
    t.same(ids(received), ['0', '1', '2', '3', '4', '5'])
    t.same(received.map((frame) => frame.type), ['start', 'progress', 'progress', 'progress', 'progress', 'complete'])
    t.same(received.filter((frame) => frame.type === 'progress').map((frame) => (frame.data as { n: number }).n), [1, 2, 3, 4])
    t.same(reconnecting, [{ attempt: 1, lastEventId: `${streamId}:2` }])
    t.equal(gate.executions, 1, 'the command ran once')
    t.same(requests.map((request) => request.lastEventId), [undefined, `${streamId}:2`])
  })
}

t.test('two-step: POST the command, follow the 202 with fetch or EventSource', async (t) => {
  const { base, gate, requests } = await tickApp(t)
  for (const EventSourceClass of [undefined, EventSource]) {
    requests.length = 0
    const received = await collect(streamCommand(`${base}/two-step`, { body: { to: 2, dropAfter: 0, holdAfter: 0 }, EventSource: EventSourceClass }))
    const streamId = (received[0] as { streamId: string }).streamId
    t.same(received.map((frame) => frame.type), ['start', 'progress', 'progress', 'complete'])
    t.same(requests.map((request) => `${request.method} ${request.url}`), ['POST /two-step', `GET /two-step/${streamId}`])
  }
  t.equal(gate.executions, 2)
})

t.test('aborting a resumable stream cancels it on the server through its cancelUrl', async (t) => {
  const { base, gate, requests } = await tickApp(t)
  const controller = new AbortController()
  const reason = new Error('cancelled')
  const error = await rejection((async () => {
    for await (const frame of streamCommand(`${base}/ticks`, { body: { to: 3, dropAfter: 0, holdAfter: 1 }, signal: controller.signal })) {
      if (frame.type === 'start') t.match(frame.cancelUrl, /^\/ticks\/[0-9a-f-]{36}$/)
      if (frame.type === 'progress') controller.abort(reason)
    }
  })())
  t.equal(error, reason)
  // The window is a minute: only the DELETE can abort the handler this soon.
  await eventually(() => gate.aborts === 1, 'the handler to be aborted')
  t.match(requests.map((request) => request.method), ['POST', 'DELETE'])
})
