import { createEventSource, type EventSourceClient } from 'eventsource-client'
import t from 'tap'
import {
  badCommandScenario, matrixServer, postTwoStep, resumeScenario,
  type Consumer, type Ending, type Message, type StreamTarget,
} from '../fixtures/client-matrix.js'

// `eventsource-client` 1: any method, a body, headers, an initial last event
// id, and an async iterator. It reconnects by itself (Last-Event-ID) and
// stops on a 204, but never looks at other statuses: a 400 answer would be
// read as an empty stream and retried forever. The recipe of
// docs/clients.md wraps its `fetch` to stop on an answer that is not a stream.

function open (target: StreamTarget): Consumer {
  const messages: Message[] = []
  let source: EventSourceClient | undefined
  let closed = false
  const ended = (async (): Promise<Ending> => {
    const twoStep = target.twoStep === true
    const url = twoStep ? await postTwoStep(target) : target.url
    const post = target.method === 'POST' && !twoStep
    let ending: Ending = {}
    if (closed) return ending
    const es = createEventSource({
      url,
      method: post ? 'POST' : 'GET',
      headers: post ? { 'content-type': 'application/json' } : {},
      body: post ? JSON.stringify(target.body) : undefined,
      initialLastEventId: target.lastEventId,
      async fetch (input, init) {
        const response = await fetch(input, init)
        if (response.status === 204) ending = { status: 204 }
        else if (!response.ok || response.headers.get('content-type')?.startsWith('text/event-stream') !== true) {
          const body = await response.json().catch(() => ({})) as { code?: string }
          ending = { status: response.status, code: body.code }
          // Closed before the error is thrown: it then does not reconnect.
          es.close()
          throw new Error(`not an event stream: ${response.status}`)
        }
        return response
      },
    })
    source = es
    // The iterator ends when the client closes: on the 204 of its reconnect after complete, or above.
    for await (const message of es) messages.push({ event: message.event ?? 'message', data: message.data, id: message.id ?? '' })
    return ending
  })()
  return { messages, ended, close: () => { closed = true; source?.close() } }
}

for (const kind of ['get', 'post', 'two-step'] as const) {
  t.test(`${kind}: every frame once across a cut, the command once, 204 after complete`, async (t) => {
    await resumeScenario(t, await matrixServer(t), open, kind, { status: 204 })
  })
}

for (const kind of ['get', 'post'] as const) {
  t.test(`${kind}: a bad command is a coded 400, not retried`, async (t) => {
    await badCommandScenario(t, await matrixServer(t), open, kind, { status: 400, code: 'FST_ERR_VALIDATION' })
  })
}
