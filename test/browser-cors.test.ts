// A page of another origin consumes an owned stream with
// `new EventSource(url, { withCredentials: true })` through @fastify/cors
// (credentials on), and resumes it after the connection is cut: the
// browser sends the session cookie and Last-Event-ID on its reconnect, the
// server checks the owner again, and the command runs once.
import fastifyCors from '@fastify/cors'
import Fastify, { type FastifyRequest } from 'fastify'
import t from 'tap'
import { CuttingProxy } from './fixtures/cutting-proxy.js'
import { launchChromium, skipWithoutChromium } from './fixtures/browser.js'
import { eventually, listen } from './fixtures/sse-client.js'
import { TicksCommand, ticksApp } from './fixtures/ticks-app.js'

const skip = skipWithoutChromium()

/** The session stand-in: a `user` cookie (a real app signs it, or reads a session store). */
function userOf (request: FastifyRequest): string | undefined {
  const match = /(?:^|;\s*)user=([^;]+)/.exec(request.headers.cookie ?? '')
  return match?.[1]
}

t.test('CORS with credentials: another origin streams an owned stream and resumes it', { skip }, async (t) => {
  // The page's origin: only serves the page.
  const site = Fastify()
  t.teardown(() => site.close())
  site.get('/', (_request, reply) => reply.type('text/html').send('<!doctype html><title>other origin</title>'))
  const sitePort = await listen(site)
  const pageOrigin = `http://127.0.0.1:${sitePort}`

  // The API's origin, behind a proxy that can cut connections.
  const { app, pacer } = await ticksApp(t, { streamOwner: userOf, namedEvents: false, retryMs: 50 })
  await app.register(fastifyCors, { origin: pageOrigin, credentials: true })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  const seen: Array<{ origin?: string, cookie?: string, lastEventId?: string }> = []
  app.addHook('onRequest', async (request) => {
    if (request.url.startsWith('/ticks')) {
      seen.push({ origin: request.headers.origin, cookie: request.headers.cookie, lastEventId: request.headers['last-event-id'] as string | undefined })
    }
  })
  const proxy = await CuttingProxy.start(await listen(app))
  t.teardown(() => proxy.close())

  const browser = await launchChromium(t)
  const context = await browser.newContext()
  t.teardown(() => context.close())
  // The session cookie of the API's host (cookies ignore ports).
  await context.addCookies([{ name: 'user', value: 'alice', domain: '127.0.0.1', path: '/', sameSite: 'Lax' }])
  const page = await context.newPage()
  await page.goto(`${pageOrigin}/`)

  pacer.hold()
  pacer.release(1)
  await page.evaluate((url) => {
    const messages: string[] = []
    ;(globalThis as unknown as { messages: string[] }).messages = messages
    const source = new EventSource(url, { withCredentials: true })
    source.onmessage = (event) => {
      messages.push(event.data as string)
      if ((JSON.parse(event.data as string) as { type: string }).type === 'complete') source.close()
    }
  }, `${proxy.url}/ticks?count=3`)
  const messages = (): Promise<string[]> => page.evaluate(() => [...(globalThis as unknown as { messages: string[] }).messages])
  let received: string[] = []
  const poll = (count: number) => () => {
    messages().then((all) => { received = all }, () => {})
    return received.length >= count
  }
  await eventually(poll(2), 'start and one progress frame', 10_000)
  proxy.cut()
  await eventually(() => seen.length >= 2, 'the reconnect', 10_000)
  pacer.release()
  await eventually(poll(5), 'the rest of the stream', 10_000)

  const frames = received.map((data) => JSON.parse(data) as { type: string, data?: { n: number } })
  t.same(frames.map((frame) => frame.type), ['start', 'progress', 'progress', 'progress', 'complete'], 'every frame once')
  t.same(frames.filter((frame) => frame.type === 'progress').map((frame) => frame.data!.n), [0, 1, 2])
  const { streamId } = JSON.parse(received[0]!) as { streamId: string }
  t.same(seen.slice(0, 2), [
    { origin: pageOrigin, cookie: 'user=alice', lastEventId: undefined },
    { origin: pageOrigin, cookie: 'user=alice', lastEventId: `${streamId}:1` },
  ], 'cross-origin, with the cookie; the reconnect with Last-Event-ID')
  t.equal(pacer.runs, 1, 'the command ran once')

  // The same reconnect without the owner's cookie is an unknown stream's.
  const stranger = await fetch(`${proxy.url}/ticks?count=3`, { headers: { origin: pageOrigin, 'last-event-id': `${streamId}:1`, cookie: 'user=mallory' } })
  t.equal(stranger.status, 204)
  t.equal(stranger.headers.get('access-control-allow-origin'), pageOrigin)
  t.equal(stranger.headers.get('access-control-allow-credentials'), 'true')
})
