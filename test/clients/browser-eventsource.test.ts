import t from 'tap'
import type { Page } from 'playwright-core'
import { launchChromium, skipWithoutChromium } from '../fixtures/browser.js'
import {
  badCommandScenario, matrixServer, resumeScenario,
  type Consumer, type Ending, type Message, type MatrixServer, type StreamTarget,
} from '../fixtures/client-matrix.js'

// The browser's own EventSource (Debian's Chromium): GET streams, and
// two-step commands (a fetch POST, then an EventSource on the url of its
// 202), which is how a browser streams a command with a body through
// EventSource. It reconnects by itself with Last-Event-ID and closes for
// good on a 204 or an error status, which it does not show to the page.

const skip = skipWithoutChromium()

interface Run {
  readonly messages: Message[]
  closed: () => void
}

/** Opens streams in `page`; what each dispatches is reported back to Node. */
async function browserConsumers (page: Page, server: MatrixServer): Promise<(target: StreamTarget) => Promise<Consumer>> {
  const runs = new Map<number, Run>()
  await page.exposeFunction('report', (id: number, message: Message | null) => {
    const run = runs.get(id)!
    if (message === null) run.closed()
    else run.messages.push(message)
  })
  await page.goto(`${server.base}/page`)
  let next = 0
  return async (target) => {
    const id = next++
    const messages: Message[] = []
    let closed!: () => void
    const ended = new Promise<Ending>((resolve) => { closed = () => resolve({}) })
    runs.set(id, { messages, closed })
    await page.evaluate(async ({ id, target }) => {
      const report = (globalThis as unknown as { report: (id: number, message: Message | null) => void }).report
      let url = target.url
      if (target.twoStep === true) {
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(target.body) })
        url = new URL((await response.json() as { url: string }).url, url).href
      }
      if (target.lastEventId !== undefined) {
        const resumed = new URL(url)
        resumed.searchParams.set('lastEventId', target.lastEventId)
        url = resumed.href
      }
      const source = new EventSource(url)
      ;(globalThis as unknown as Record<string, EventSource>)[`source${id}`] = source
      for (const event of ['start', 'progress', 'complete', 'error']) {
        source.addEventListener(event, (message) => {
          // The connection's own error event is an Event without data.
          if (message instanceof MessageEvent) report(id, { event, data: message.data as string, id: message.lastEventId })
        })
      }
      source.addEventListener('error', () => { if (source.readyState === EventSource.CLOSED) report(id, null) })
    }, { id, target })
    return {
      messages,
      ended,
      close: () => { page.evaluate((id) => (globalThis as unknown as Record<string, EventSource | undefined>)[`source${id}`]?.close(), id).catch(() => {}) },
    }
  }
}

t.test('Chromium EventSource', { skip }, async (t) => {
  const browser = await launchChromium(t)
  for (const kind of ['get', 'two-step'] as const) {
    t.test(`${kind}: every frame once across a cut, the command once, 204 after complete`, async (t) => {
      const server = await matrixServer(t)
      const context = await browser.newContext()
      t.teardown(() => context.close())
      const open = await browserConsumers(await context.newPage(), server)
      await resumeScenario(t, server, open, kind, {})
    })
  }
  t.test('get: a bad command is a 400, not retried', async (t) => {
    const server = await matrixServer(t)
    const context = await browser.newContext()
    t.teardown(() => context.close())
    await badCommandScenario(t, server, await browserConsumers(await context.newPage(), server), 'get', {})
  })
})
