// Property-based: whatever a client sends as a command, a query string, a
// Last-Event-ID or a stream url, the answer is never a 5xx, no command runs
// for input that is not valid, nothing rejects unhandled, and the server
// serves a normal stream afterwards.
import type { FastifyRequest } from 'fastify'
import fc from 'fast-check'
import t from 'tap'
import { TicksCommand, ticksApp } from './fixtures/ticks-app.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 400)

const userOf = (request: FastifyRequest): string | undefined => {
  const user = request.headers['x-user']
  return typeof user === 'string' ? user : undefined
}

async function fuzzApp (t: Parameters<typeof ticksApp>[0]) {
  const kit = await ticksApp(t, { streamOwner: userOf })
  kit.app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, resume: true })
  kit.app.streamRoute({ method: 'POST', url: '/post', request: TicksCommand, resume: true })
  kit.app.streamRoute({ method: 'POST', url: '/jobs', request: TicksCommand, twoStep: true })
  await kit.app.ready()
  return kit
}

// Anything a query string, a header or a url may carry, and the values that matter here.
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', '0', '1', '-1', '1.5', '1e3', 'NaN', '  2', '0x10', '99999999999999999999', 'true', 'null', '[]', '{}'),
  fc.uuid().map((id) => `${id}:${1}`),
  fc.tuple(fc.uuid(), fc.integer({ min: -2, max: 10 })).map(([id, seq]) => `${id}:${seq}`)
)
const users = fc.option(fc.constantFrom('alice', 'bob', ''), { nil: undefined })

/** A count that makes a valid command run: at most 3 ticks, so that streams end at once. */
function validCount (value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0
}

t.test('fuzz: query strings, Last-Event-ID values, bodies and stream urls', async (t) => {
  const { app, pacer } = await fuzzApp(t)
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  let cases = 0
  const headersOf = (user: string | undefined, extra: Record<string, string> = {}): Record<string, string> =>
    user === undefined ? extra : { ...extra, 'x-user': user }
  const safeHeader = (value: string): string => value.replace(/[^\t\x20-\x7e\x80-\xff]/g, '')

  // Query strings: any keys, any values, raw or encoded.
  await fc.assert(fc.asyncProperty(fc.dictionary(fc.oneof(fc.constantFrom('count', 'lastEventId'), fc.string({ maxLength: 8 })), text, { maxKeys: 3 }), fc.boolean(), users,
    async (query, raw, user) => {
      cases++
      const search = Object.entries(query).map(([k, v]) => raw ? `${k}=${v}` : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')
      const runs = pacer.runs
      const count = Number(query.count)
      // Keep valid commands short: a huge count is a valid command, just a long one.
      if (Number.isFinite(count) && count > 3) return true
      const res = await app.inject({ url: `/ticks?${search}`, headers: headersOf(user) })
      if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ?${search}: ${res.body}`)
      if (res.statusCode !== 200 && pacer.runs !== runs) throw new Error(`a command ran for ?${search} (${res.statusCode})`)
      return true
    }), { numRuns: RUNS })

  // Last-Event-ID headers on every route: never a run, never a 5xx.
  await fc.assert(fc.asyncProperty(text, fc.constantFrom('/ticks?count=1', '/post', '/jobs'), users, async (id, url, user) => {
    cases++
    const runs = pacer.runs
    const res = await app.inject({
      method: url === '/ticks?count=1' ? 'GET' : 'POST',
      url,
      headers: headersOf(user, { 'last-event-id': safeHeader(id) }),
      ...(url === '/ticks?count=1' ? {} : { payload: { count: 1 } }),
    })
    if (res.statusCode >= 500) throw new Error(`${res.statusCode} for Last-Event-ID ${JSON.stringify(id)} on ${url}: ${res.body}`)
    if (pacer.runs !== runs && safeHeader(id) !== '') throw new Error(`Last-Event-ID ${JSON.stringify(id)} ran a command`)
    return true
  }), { numRuns: RUNS })

  // Bodies: any JSON, any text, any content type.
  await fc.assert(fc.asyncProperty(fc.oneof(fc.jsonValue().map((value) => JSON.stringify(value)), fc.string({ maxLength: 60 }), fc.constant('{"count":2}')),
    fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/merge-patch+json', undefined), fc.constantFrom('/post', '/jobs'), users,
    async (payload, type, url, user) => {
      cases++
      let parsed: unknown
      try { parsed = JSON.parse(payload) } catch {}
      const count = (parsed as { count?: unknown } | null)?.count
      if (validCount(count) && (count as number) > 3) return true
      const runs = pacer.runs
      const res = await app.inject({ method: 'POST', url, payload, headers: headersOf(user, type === undefined ? {} : { 'content-type': type }) })
      if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${url} ${JSON.stringify(payload)} (${type}): ${res.body}`)
      if (res.statusCode >= 400 && pacer.runs !== runs) throw new Error(`a command ran for a refused body ${JSON.stringify(payload)}`)
      return true
    }), { numRuns: RUNS })

  // Stream urls: GET and DELETE of any id, with or without Last-Event-ID.
  await fc.assert(fc.asyncProperty(text, fc.constantFrom('GET', 'DELETE'), fc.constantFrom('/jobs', '/ticks', '/post'), fc.option(text, { nil: undefined }), users,
    async (id, method, base, lastEventId, user) => {
      cases++
      if (method === 'GET' && base !== '/jobs') return true
      const runs = pacer.runs
      const res = await app.inject({
        method,
        url: `${base}/${encodeURIComponent(id)}`,
        headers: headersOf(user, lastEventId === undefined ? {} : { 'last-event-id': safeHeader(lastEventId) }),
      })
      if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${method} ${base}/${id}: ${res.body}`)
      if (pacer.runs !== runs) throw new Error(`${method} ${base}/${id} ran a command`)
      return true
    }), { numRuns: RUNS })

  t.equal(unhandled.length, 0, 'no unhandled rejection')
  // Two-step commands posted by the fuzz wait for their GET: only those may be left.
  t.equal(app.streamStats().openStreams, 0, 'no stream left running')
  const after = await app.inject({ url: '/ticks?count=2' })
  t.equal(after.statusCode, 200, 'the server still serves')
  t.match(after.body, /"type":"complete"/)
  t.comment(`${cases} fuzz cases`)
  t.ok(cases >= RUNS * 4)
})
