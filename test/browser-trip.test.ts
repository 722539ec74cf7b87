import t from 'tap'
import { buildApp } from '../example-app/app.js'
import { TripDesk } from '../example-app/trip-saga.js'
import { launchChromium, openExample, skipWithoutChromium } from './fixtures/browser.js'
import { parseSse, payload } from './fixtures/sse-parser.js'

// The "book a trip" saga of the example app: its frames over inject, and
// its page in a real browser (Debian's Chromium, headless), which shows
// each step and its compensation as they happen.

const skip = skipWithoutChromium()
const browser = skip === false ? await launchChromium(t) : undefined

t.test('GET /trips/book: a frame per step; a failing charge undoes the flight, then the hotel', async (t) => {
  const tripDesk = new TripDesk()
  const app = await buildApp({ orderDelayMs: 5, tripDesk })
  t.teardown(() => app.close())
  const booked = parseSse((await app.inject({ url: '/trips/book?tripId=ok' })).body).frames.map(payload)
  t.same(booked.slice(1).map((p) => p.type === 'progress' ? p.data : p.type), [
    { step: 'ReserveHotel', status: 'done', result: { reference: 'hotel-ok' } },
    { step: 'ReserveFlight', status: 'done', result: { reference: 'flight-ok' } },
    { step: 'ChargeCard', status: 'done', result: { reference: 'payment-ok' } },
    'complete',
  ])
  t.same([...tripDesk.booked.get('ok')!], ['hotel', 'flight', 'payment'])
  const failed = parseSse((await app.inject({ url: '/trips/book?tripId=no&failAt=3' })).body).frames.map(payload)
  t.same(failed.slice(3, -1).map((p) => `${(p.data as { step: string }).step} ${(p.data as { status: string }).status}`),
    ['ReserveFlight compensating', 'ReserveFlight compensated', 'ReserveHotel compensating', 'ReserveHotel compensated'])
  t.match(failed.at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_SAGA_COMPENSATED', message: /stopped at step ChargeCard/ } })
  t.same([...tripDesk.booked.get('no')!], [], 'nothing of it remains booked')
  const page = await app.inject({ url: '/trips' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
})

t.test('the trip page shows each step done, then a failing step\'s compensations live', { skip }, async (t) => {
  const tripDesk = new TripDesk()
  const example = await openExample(t, browser!, { orderDelayMs: 100, tripDesk })
  const { page } = example
  await page.goto(`${example.base}/trips`)
  await page.locator('[data-testid=trip][data-ready=true]').waitFor({ timeout: 10_000 })
  // Every status each step shows, in order.
  await page.evaluate(`
    window.seen = []
    new MutationObserver(() => {
      for (const item of document.querySelectorAll('#steps li')) {
        const entry = item.dataset.step + ' ' + item.dataset.status
        if (item.dataset.status && window.seen.at(-1) !== entry && !window.seen.includes(entry)) window.seen.push(entry)
      }
    }).observe(document.getElementById('steps'), { subtree: true, attributes: true })
  `)
  await page.getByTestId('book').click()
  await page.locator('[data-testid=status][data-state=complete]').waitFor({ timeout: 10_000 })
  t.same(await page.evaluate('window.seen'), ['ReserveHotel done', 'ReserveFlight done', 'ChargeCard done'])

  await page.evaluate('window.seen = []')
  await page.getByTestId('fail-at').selectOption('3')
  await page.getByTestId('book').click()
  await page.locator('[data-testid=status][data-state=failed]').waitFor({ timeout: 10_000 })
  t.same(await page.evaluate('window.seen'), [
    'ReserveHotel done', 'ReserveFlight done', 'ReserveFlight compensating', 'ReserveFlight compensated', 'ReserveHotel compensating', 'ReserveHotel compensated',
  ])
  t.match(await page.getByTestId('status').textContent(), /^FST_ERR_CQRS_STREAM_SAGA_COMPENSATED: /)
  t.same(example.pageErrors, [])
  t.equal([...tripDesk.booked.values()].filter((trip) => trip.size > 0).length, 1, 'only the first trip stays booked')
})
