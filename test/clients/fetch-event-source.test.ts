import { fetchEventSource, type EventSourceMessage } from '@microsoft/fetch-event-source'
import t from 'tap'
import { HEARTBEAT } from '../../src/sse/frame.js'
import { clientApp, rawStream } from '../fixtures/client-app.js'
import {
  badCommandScenario, matrixServer, postTwoStep, resumeScenario,
  type Consumer, type Ending, type Message, type StreamTarget,
} from '../fixtures/client-matrix.js'
import { frames } from '../fixtures/sse-app.js'

// `@microsoft/fetch-event-source` 2, the usual choice for POST streams with
// a body, used as docs/clients.md says: onopen checks the answer (a 204 or
// a coded JSON error stops it), onclose before complete reconnects (it
// sends Last-Event-ID itself), onerror stops on what onopen threw.
//
// It is a browser library: it calls window.setTimeout and
// document.addEventListener. Node has fetch, so a window and a document
// that is never hidden are all it lacks here.
Object.assign(globalThis, {
  window: globalThis,
  document: { hidden: false, addEventListener () {}, removeEventListener () {} },
})

/** Thrown in onopen for an answer that is not a stream: ends the run, no retry. */
class StopStream extends Error {
  readonly ending: Ending
  constructor (ending: Ending) {
    super(`stream stopped: ${String(ending.status)}`)
    this.ending = ending
  }
}

/** Thrown in onclose when the response ended before complete: fetch-event-source then reconnects. */
class ConnectionEnded extends Error {}

function open (target: StreamTarget, onMessage: (message: EventSourceMessage) => void = () => {}): Consumer {
  const messages: Message[] = []
  const controller = new AbortController()
  const ended = (async (): Promise<Ending> => {
    const twoStep = target.twoStep === true
    const url = twoStep ? await postTwoStep(target) : target.url
    const post = target.method === 'POST' && !twoStep
    const headers: Record<string, string> = post ? { 'content-type': 'application/json' } : {}
    if (target.lastEventId !== undefined) headers['last-event-id'] = target.lastEventId
    let complete = false
    try {
      await fetchEventSource(url, {
        method: post ? 'POST' : 'GET',
        headers,
        body: post ? JSON.stringify(target.body) : undefined,
        signal: controller.signal,
        openWhenHidden: true,
        async onopen (response) {
          if (response.status === 204) throw new StopStream({ status: 204 })
          if (response.ok && response.headers.get('content-type')?.startsWith('text/event-stream') === true) return
          const body = await response.json().catch(() => ({})) as { code?: string }
          throw new StopStream({ status: response.status, code: body.code })
        },
        onmessage (message) {
          onMessage(message)
          messages.push({ event: message.event || 'message', data: message.data, id: message.id })
          // Without namedEvents there is no event name: the frame's type says it.
          if (message.data !== '' && (JSON.parse(message.data) as { type: string }).type === 'complete') complete = true
        },
        onclose () {
          if (!complete) throw new ConnectionEnded()
        },
        onerror (error) {
          if (error instanceof StopStream) throw error
          // A cut connection, or ConnectionEnded: retry after the server's retry: hint.
          return undefined
        },
      })
      return {}
    } catch (error) {
      if (error instanceof StopStream) return error.ending
      throw error
    }
  })()
  return { messages, ended, close: () => controller.abort() }
}

for (const kind of ['get', 'post', 'two-step'] as const) {
  t.test(`${kind}: every frame once across a cut, the command once, 204 after complete`, async (t) => {
    await resumeScenario(t, await matrixServer(t), open, kind, {})
  })
}

for (const kind of ['get', 'post'] as const) {
  t.test(`${kind}: a bad command is a coded 400, not retried`, async (t) => {
    await badCommandScenario(t, await matrixServer(t), open, kind, { status: 400, code: 'FST_ERR_VALIDATION' })
  })
}

t.test('the old heartbeat (a comment and a blank line) was an empty message per beat; ours is none', async (t) => {
  // The same stream, byte for byte, but for the heartbeats between its frames.
  const OLD_HEARTBEAT = ':\n\n'
  const { app, start } = await clientApp(t)
  const START = { type: 'start', streamId: 's' }
  const body = (beat: string): string =>
    frames('s', [START], 0) + beat.repeat(3) + frames('s', [{ type: 'progress', data: { n: 0 } }], 1) + beat.repeat(3) + frames('s', [{ type: 'complete' }], 2)
  app.get('/old', (_request, reply) => rawStream(reply, body(OLD_HEARTBEAT), true))
  app.get('/new', (_request, reply) => rawStream(reply, body(HEARTBEAT), true))
  const base = await start()

  // What a user's onmessage does with every message.
  const parse = (message: EventSourceMessage): void => { JSON.parse(message.data) }
  const old = open({ method: 'GET', url: `${base}/old` })
  await old.ended
  t.same(old.messages.map((message) => message.data), [
    JSON.stringify(START), '', '', '', '{"type":"progress","data":{"n":0}}', '', '', '', '{"type":"complete"}',
  ], 'six empty messages, one per old heartbeat')
  t.throws(() => { for (const message of old.messages) parse({ ...message, retry: undefined }) }, SyntaxError,
    'JSON.parse(message.data) throws on them')

  const parsed: unknown[] = []
  const ours = open({ method: 'GET', url: `${base}/new` }, (message) => { parsed.push(JSON.parse(message.data)) })
  await ours.ended
  t.same(parsed, [START, { type: 'progress', data: { n: 0 } }, { type: 'complete' }], 'the frames, and nothing else')
})
