// The most common SSE complaint, shown in Chromium: over HTTP/1.1 a browser
// runs at most 6 connections per origin, so a page's 7th EventSource waits
// until one closes; over HTTP/2 all 12 of a page's streams share one
// connection and all get their frames at once.
import { Type } from '@sinclair/typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import cqrsStream, { Request, Response, StreamingRequestHandler, type StreamContext } from '../src/index.js'
import { launchChromium, skipWithoutChromium } from './fixtures/browser.js'
import { eventually } from './fixtures/sse-client.js'
import { testCertificate } from './fixtures/tls.js'

const skip = skipWithoutChromium()
const STREAMS = 12

class Hold extends Request(Type.Object({ i: Type.Integer() })) {}
class Step extends Response(Type.Object({ n: Type.Integer() })) {}

/** Counts runs; each run sends one frame, then holds until `open()`. */
class Gate {
  runs = 0
  #open!: () => void
  readonly opened = new Promise<void>((resolve) => { this.#open = resolve })
  open (): void { this.#open() }
}

let gate = new Gate()

class HoldHandler extends StreamingRequestHandler<Hold, Step> {
  async * handle (_command: Hold, { signal }: StreamContext): AsyncGenerator<Step> {
    gate.runs++
    yield new Step({ n: 0 })
    await Promise.race([gate.opened, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))])
    yield new Step({ n: 1 })
  }
}

async function streamsApp (t: { teardown (fn: () => unknown): void }, app: FastifyInstance): Promise<Gate> {
  gate = new Gate()
  t.teardown(() => app.close())
  await app.register(cqrsStream, { requests: (map) => map.bind(Hold, HoldHandler), heartbeatMs: 0 })
  app.streamRoute({ method: 'GET', url: '/hold', request: Hold })
  app.get('/', (_request, reply) => reply.type('text/html').send('<!doctype html><title>12 streams</title>'))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return gate
}

/** Opens STREAMS EventSources in the page; resolves with a function that counts those that got a progress frame. */
async function openStreams (page: import('playwright-core').Page): Promise<() => Promise<number>> {
  await page.evaluate((count) => {
    const started: number[] = []
    ;(globalThis as unknown as { started: number[] }).started = started
    for (let i = 0; i < count; i++) {
      const source = new EventSource(`/hold?i=${i}`)
      source.onmessage = (event) => {
        if ((JSON.parse(event.data as string) as { type: string }).type === 'progress' && !started.includes(i)) started.push(i)
      }
    }
  }, STREAMS)
  return () => page.evaluate(() => (globalThis as unknown as { started: number[] }).started.length)
}

t.test('12 EventSource streams of one page', { skip }, async (t) => {
  const browser = await launchChromium(t)

  t.test('HTTP/2: all 12 get progress at once', async (t) => {
    const { key, cert } = await testCertificate()
    const app = Fastify({ http2: true, https: { key, cert, allowHTTP1: true } })
    const held = await streamsApp(t, app as unknown as FastifyInstance)
    const context = await browser.newContext({ ignoreHTTPSErrors: true })
    t.teardown(() => context.close())
    const page = await context.newPage()
    const { port } = app.server.address() as { port: number }
    await page.goto(`https://127.0.0.1:${port}/`)
    const protocol = await page.evaluate(() => (performance.getEntriesByType('navigation' as never)[0] as unknown as { nextHopProtocol: string }).nextHopProtocol)
    t.equal(protocol, 'h2', 'the page came over HTTP/2')
    const progressed = await openStreams(page)
    await eventually(() => held.runs === STREAMS, 'all 12 commands running', 10_000)
    let seen = 0
    await eventually(() => {
      progressed().then((count) => { seen = count }, () => {})
      return seen === STREAMS
    }, 'a progress frame on each of the 12 streams', 10_000)
    t.equal(seen, STREAMS, 'all 12 at once, each still open (held before its second frame)')
    held.open()
  })

  t.test('HTTP/1.1: only 6 run, the others wait for a connection', async (t) => {
    const app = Fastify()
    const held = await streamsApp(t, app)
    const context = await browser.newContext()
    t.teardown(() => context.close())
    const page = await context.newPage()
    const { port } = app.server.address() as { port: number }
    await page.goto(`http://127.0.0.1:${port}/`)
    const progressed = await openStreams(page)
    let seen = 0
    await eventually(() => {
      progressed().then((count) => { seen = count }, () => {})
      return seen === 6
    }, 'six streams', 10_000)
    // Long enough for a 7th to have started, were the browser to open one.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    t.equal(await progressed(), 6, 'the browser holds the 7th to 12th back')
    t.equal(held.runs, 6, 'so their commands have not even started')
    // The streams end: the waiting ones get their connections.
    held.open()
    await eventually(() => {
      progressed().then((count) => { seen = count }, () => {})
      return seen === STREAMS
    }, 'the rest, as connections free up', 10_000)
    t.equal(held.runs, STREAMS)
  })
})
