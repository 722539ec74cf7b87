import t from 'tap'
import { streamCommand, StreamCommandError, type StreamFrame } from '../../src/client/index.js'
import { badCommandScenario, matrixServer, resumeScenario, type Consumer, type Ending, type Message, type StreamTarget } from '../fixtures/client-matrix.js'

// Our own client in the matrix (Node: fetch for every method). It follows a
// two-step 202 by itself, resumes with Last-Event-ID, stops on complete.

function messageOf (frame: StreamFrame): Message {
  if (frame.type === 'start') {
    return { event: 'start', data: JSON.stringify({ type: 'start', streamId: frame.streamId, cancelUrl: frame.cancelUrl }), id: frame.id }
  }
  if (frame.type === 'progress') return { event: 'progress', data: JSON.stringify({ type: 'progress', data: frame.data }), id: frame.id }
  return { event: 'complete', data: '{"type":"complete"}', id: frame.id }
}

function open (target: StreamTarget): Consumer {
  const messages: Message[] = []
  const controller = new AbortController()
  const ended = (async (): Promise<Ending> => {
    try {
      const frames = streamCommand(target.url, {
        method: target.method,
        body: target.body,
        signal: controller.signal,
        resume: target.lastEventId === undefined ? undefined : { lastEventId: target.lastEventId },
      })
      for await (const frame of frames) messages.push(messageOf(frame))
      return {}
    } catch (error) {
      if (!(error instanceof StreamCommandError)) throw error
      return { status: error.statusCode, code: error.code }
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
  t.test(`${kind}: a bad command is a coded 400`, async (t) => {
    await badCommandScenario(t, await matrixServer(t), open, kind, { status: 400, code: 'FST_ERR_VALIDATION' })
  })
}
