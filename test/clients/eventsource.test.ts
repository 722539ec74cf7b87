import { EventSource } from 'eventsource'
import t from 'tap'
import {
  badCommandScenario, matrixServer, postTwoStep, resumeScenario, withLastEventId,
  type Consumer, type Ending, type Message, type StreamTarget,
} from '../fixtures/client-matrix.js'

// `eventsource` 5, the WHATWG EventSource for Node: GET streams as in a
// browser; a POST with a body through its `fetch` option (the recipe of
// docs/clients.md). It reconnects by itself with Last-Event-ID, and stops
// for good on a 204 or an error status, with the status in the error event.

const FRAMES = ['start', 'progress', 'complete', 'error']

function open (target: StreamTarget): Consumer {
  const messages: Message[] = []
  let source: EventSource | undefined
  let closed = false
  const ended = new Promise<Ending>((resolve, reject) => {
    const connect = async (): Promise<void> => {
      const url = target.twoStep === true ? await postTwoStep(target) : target.url
      const post = target.method === 'POST' && target.twoStep !== true
      if (closed) return
      source = new EventSource(withLastEventId(url, target.lastEventId), post
        ? {
            fetch: (input, init) => fetch(input, {
              ...init,
              method: 'POST',
              headers: { ...init.headers, 'content-type': 'application/json' },
              body: JSON.stringify(target.body),
            }),
          }
        : undefined)
      const current = source
      for (const event of FRAMES) {
        current.addEventListener(event, (message) => {
          if (!('data' in message)) return
          // Left open after complete, it reconnects when the response ends: that reconnect is answered 204.
          const { data, lastEventId } = message as unknown as { data: string, lastEventId: string }
          messages.push({ event, data, id: lastEventId })
        })
      }
      current.addEventListener('error', (event) => {
        // readyState CONNECTING: it reconnects by itself. CLOSED: a 204 or an error status.
        if (current.readyState === EventSource.CLOSED) resolve({ status: event.code })
      })
    }
    connect().catch(reject)
  })
  return { messages, ended, close: () => { closed = true; source?.close() } }
}

for (const kind of ['get', 'post', 'two-step'] as const) {
  t.test(`${kind}: every frame once across a cut, the command once, 204 after complete`, async (t) => {
    // After complete the response ends; it reconnects with the last id and stops on the 204.
    await resumeScenario(t, await matrixServer(t), open, kind, { status: 204 })
  })
}

for (const kind of ['get', 'post'] as const) {
  t.test(`${kind}: a bad command is a 400, not retried`, async (t) => {
    await badCommandScenario(t, await matrixServer(t), open, kind, { status: 400 })
  })
}
