// The example page behind a proxy in front of two instances that share
// Redis, in Chromium: reloading the page mid-run resumes the stream on the
// other instance. The command runs once, every result shows once.
import { createServer, request as forward } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildApp } from '../example-app/app.js'
import { RedisStreamStore } from '../src/redis/index.js'
import { launchChromium, skipWithoutChromium, SpyOrderService } from './fixtures/browser.js'
import { keyPrefix, REDIS_URL } from './fixtures/redis-apps.js'
import { listen } from './fixtures/sse-client.js'

const skip = skipWithoutChromium()
const browser = skip === false ? await launchChromium(t) : undefined

t.test('a page reloaded mid-run resumes its stream on the other instance', { skip }, async (t) => {
  const prefix = keyPrefix(t)
  // One spy for both instances: executions count the command wherever it runs.
  const orders = new SpyOrderService({ orderDelayMs: 400 })
  const ports: number[] = []
  const streamRequests: Array<{ instance: string, lastEventId: string | undefined, url: string }> = []
  for (const instance of ['one', 'two']) {
    const streamStore = new RedisStreamStore({ redis: REDIS_URL, keyPrefix: prefix })
    const app = await buildApp({ orderDelayMs: 400, orders, instance, streamStore })
    t.teardown(async () => {
      await app.close()
      await streamStore.close()
    })
    app.addHook('onRequest', async (request) => {
      if (request.url.startsWith('/orders/process')) {
        const lastEventId = request.headers['last-event-id']
        streamRequests.push({ instance, url: request.url, lastEventId: typeof lastEventId === 'string' ? lastEventId : undefined })
      }
    })
    ports.push(await listen(app))
  }
  // The first stream request goes to instance one, every later one to two;
  // the page and its scripts come from one.
  let streams = 0
  const proxy = createServer((req, res) => {
    const port = req.url!.startsWith('/orders/process') && streams++ > 0 ? ports[1] : ports[0]
    const upstream = forward({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => { res.destroy() })
    res.on('close', () => { upstream.destroy() })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => { proxy.closeAllConnections(); proxy.close(resolve) }))
  const base = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`

  const context = await browser!.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (error) => { pageErrors.push(error.message) })
  await page.goto(`${base}/`)
  await page.locator('[data-testid=command][data-ready=true]').waitFor({ timeout: 10_000 })
  await page.getByTestId('order-ids').fill('a,b,c,d,e,f')
  await page.getByTestId('start').click()
  await page.waitForFunction('document.getElementById("progress-text").textContent === "2 / 6"', undefined, { timeout: 10_000, polling: 20 })

  await page.reload()
  await page.locator('[data-testid=status][data-resumed=true]').waitFor({ timeout: 10_000 })
  await page.locator('[data-testid=status][data-state=complete]').waitFor({ timeout: 10_000 })

  t.equal(await page.getByTestId('progress-text').textContent(), '6 / 6')
  const results = await page.getByTestId('results').locator('li').allTextContents()
  t.same(results.map((text) => text.split(':')[0]), ['a', 'b', 'c', 'd', 'e', 'f'], 'every result once, in order, across the reload')
  t.equal(orders.executions, 1, 'the command ran once')
  t.same(orders.processed, ['a', 'b', 'c', 'd', 'e', 'f'])
  t.equal(streamRequests.length, 2, 'the start, and one resume')
  t.match(streamRequests[0], { instance: 'one', lastEventId: undefined })
  t.equal(streamRequests[1]!.instance, 'two', 'resumed on the other instance')
  t.match(streamRequests[1]!.url, /[?&]lastEventId=[^&]+%3A[1-9]/, 'from the last frame the page had saved')
  t.equal(await page.evaluate('sessionStorage.length'), 0, 'nothing left saved after complete')
  t.same(pageErrors, [])
})
