import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { launchChromium, openExample, skipWithoutChromium } from './fixtures/browser.js'
import { eventually } from './fixtures/sse-client.js'

// The example page in a real browser (Debian's Chromium, headless): the
// typed client served by the example app, EventSource, the UI. Each test
// has its own app on a random port and counts on the server what the page
// caused. Skipped, loudly, only when there is no /usr/bin/chromium.

const skip = skipWithoutChromium()
const browser = skip === false ? await launchChromium(t) : undefined

// Long enough for an EventSource told `retry: 50` to have reconnected many times.
const GRACE_MS = 1000

t.test('the page runs a command to 100 %: live progress, every result, complete', { skip }, async (t) => {
  const example = await openExample(t, browser!, { orderDelayMs: 20 })
  const { page } = example
  // Every value the progress text takes, in order: proof that it fills frame by frame.
  await page.evaluate(`
    window.progressSeen = []
    new MutationObserver((records) => {
      for (const record of records) for (const node of record.addedNodes) window.progressSeen.push(node.data)
    }).observe(document.getElementById('progress-text'), { childList: true })
  `)
  t.equal(await page.getByTestId('order-ids').inputValue(), 'a,b,c,d,e,f,g,h', 'the default order ids')
  await page.getByTestId('start').click()
  await example.waitForState('complete')

  t.equal(await page.getByTestId('status').textContent(), 'complete')
  t.equal(await page.getByTestId('progress').getAttribute('value'), '8')
  t.equal(await page.getByTestId('progress').getAttribute('max'), '8')
  t.equal(await page.getByTestId('progress-text').textContent(), '8 / 8')
  t.same(await page.evaluate('window.progressSeen'), ['0 / 8', '1 / 8', '2 / 8', '3 / 8', '4 / 8', '5 / 8', '6 / 8', '7 / 8', '8 / 8'])
  const results = await page.getByTestId('results').locator('li').allTextContents()
  t.equal(results.length, 8)
  ;['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].forEach((orderId, index) => {
    t.match(results[index], new RegExp(`^${orderId}: processed, 2 item\\(s\\) at `), orderId)
  })
  t.equal(await page.getByTestId('error').isHidden(), true, 'no error shown')
  t.equal(await page.getByTestId('reconnecting').isHidden(), true)
  t.equal(await page.getByTestId('start').isEnabled(), true, 'Start again')
  t.equal(await page.getByTestId('cancel').isDisabled(), true)

  t.same(example.orders.processed, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'])
  t.equal(example.orders.executions, 1)
  t.match(example.streamRequests(), [{
    method: 'GET',
    url: '/orders/process?orderIds=a&orderIds=b&orderIds=c&orderIds=d&orderIds=e&orderIds=f&orderIds=g&orderIds=h',
    lastEventId: undefined,
  }])
  t.ok(example.requests.some((request) => request.url === '/client/index.js'), 'the client came from the app')
  t.same(example.pageErrors, [])
})

t.test('Cancel aborts the command on the server', { skip }, async (t) => {
  // Order a would take a minute: only the abort can end it.
  const example = await openExample(t, browser!, { orderDelayMs: 60_000 })
  const { page } = example
  await example.start('a,b,c')
  await example.waitForState('streaming')
  await eventually(() => example.orders.executions === 1, 'order a to be in progress on the server')
  t.equal(await page.getByTestId('cancel').isEnabled(), true)

  await page.getByTestId('cancel').click()
  await example.waitForState('cancelled')
  await eventually(() => example.orders.aborts === 1, 'the handler\'s signal to abort')
  await eventually(() => example.app.mediator.openStreams === 0, 'the stream to end on the server')

  t.equal(await page.getByTestId('status').textContent(), 'cancelled')
  t.equal(await page.getByTestId('progress-text').textContent(), '0 / 3')
  t.equal(await page.getByTestId('results').locator('li').count(), 0)
  t.equal(await page.getByTestId('error').isHidden(), true, 'a cancel is not an error')
  t.same(example.orders.processed, [], 'no order was completed')
  t.equal(example.streamRequests().length, 1, 'no reconnect')
  t.same(example.pageErrors, [])
})

t.test('after complete, no further request reaches the server', { skip }, async (t) => {
  // retry: 50 makes an EventSource left open reconnect within 50 ms.
  const example = await openExample(t, browser!, { orderDelayMs: 5, retryMs: 50 })
  await example.start('a,b')
  await example.waitForState('complete')
  const seen = example.requests.length
  await sleep(GRACE_MS)
  t.equal(example.requests.length, seen, `no request within ${GRACE_MS} ms`)
  t.equal(example.streamRequests().length, 1)
  t.equal(example.orders.executions, 1, 'the command ran once')
  t.same(example.pageErrors, [])
})

t.test('errors are shown: no order ids, and a command the server rejects', { skip }, async (t) => {
  const example = await openExample(t, browser!)
  const { page } = example
  await example.start(' , ')
  await example.waitForState('failed')
  t.equal(await page.getByTestId('error').textContent(), 'Enter at least one order id.')
  t.equal(example.streamRequests().length, 0)

  // 101 ids: the route's schema allows 100. EventSource cannot read the 400, the client says so.
  await example.start(Array.from({ length: 101 }, (_, index) => `o${index}`).join(','))
  await example.waitForState('failed')
  t.match(await page.getByTestId('error').textContent(), /^FST_ERR_CQRS_STREAM_HTTP: fastify-cqrs-stream: the event stream could not be opened/)
  t.equal(await page.getByTestId('error').isVisible(), true)
  t.equal(example.streamRequests().length, 1, 'not retried')
  t.equal(example.orders.executions, 0)
  // Chromium logs the failed EventSource request itself; nothing else.
  t.same(example.pageErrors.filter((text) => !/status of 400/.test(text)), [])
})

t.test('a socket dropped by the server mid-stream resumes: no second execution, no frame twice', { skip }, async (t) => {
  let sockets: Array<{ destroy (): void }> = []
  const example = await openExample(t, browser!, {
    orderDelayMs: 250,
    retryMs: 100,
    beforeListen (app) {
      app.addHook('onRequest', (request, _reply, done) => {
        if (request.method === 'GET' && request.url.startsWith('/orders/process')) sockets.push(request.raw.socket)
        done()
      })
    },
  })
  const { page } = example
  await page.evaluate(`
    window.progressSeen = []
    new MutationObserver((records) => {
      for (const record of records) for (const node of record.addedNodes) window.progressSeen.push(node.data)
    }).observe(document.getElementById('progress-text'), { childList: true })
  `)
  await example.start('a,b,c,d,e,f')
  await page.waitForFunction('Number(document.getElementById("progress").value) >= 2', undefined, { timeout: 10_000 })
  // The server cuts the connection: what a proxy restart or a network blip does.
  for (const socket of sockets) socket.destroy()
  sockets = []
  await page.locator('[data-testid=reconnecting]:not([hidden])').waitFor({ timeout: 10_000 })
  await example.waitForState('complete')

  const streams = example.streamRequests()
  t.equal(streams.length, 2, 'one reconnect')
  t.equal(streams[0]!.lastEventId, undefined)
  t.match(streams[1]!.lastEventId, /^[0-9a-f-]{36}:\d+$/, 'the reconnect carried Last-Event-ID')
  t.equal(example.orders.executions, 1, 'the command ran once')
  t.same(example.orders.processed, ['a', 'b', 'c', 'd', 'e', 'f'])
  const results = await page.getByTestId('results').locator('li').allTextContents()
  t.same(results.map((text) => text.split(':')[0]), ['a', 'b', 'c', 'd', 'e', 'f'], 'every result once, in order')
  t.same(await page.evaluate('window.progressSeen'), ['0 / 6', '1 / 6', '2 / 6', '3 / 6', '4 / 6', '5 / 6', '6 / 6'], 'the bar never went back or skipped')
  t.equal(await page.getByTestId('reconnecting').isHidden(), true, 'the indicator is gone once resumed')
  t.equal(await page.getByTestId('error').isHidden(), true)
  t.same(example.pageErrors.filter((text) => !/ERR_(INCOMPLETE_CHUNKED_ENCODING|EMPTY_RESPONSE|CONNECTION)/.test(text)), [])
})
