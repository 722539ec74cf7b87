// The in-memory StreamStore on its own: a ring per stream, kept for a while
// after the end, forgotten on delete.
import t from 'tap'
import { InMemoryStreamStore } from '../src/index.js'
import { eventually } from './fixtures/sse-client.js'

const frame = (seq: number): { seq: number, text: string } => ({ seq, text: `id: s:${seq}\ndata: ${seq}\n\n` })

t.test('keeps the last maxFrames frames and reads those after a seq', async (t) => {
  const store = new InMemoryStreamStore()
  store.open('s', { scope: '/a', maxFrames: 3 })
  for (let seq = 0; seq < 5; seq++) store.append('s', frame(seq))
  t.same(store.read('s', -1), { scope: '/a', frames: [frame(2), frame(3), frame(4)], ended: false }, 'the oldest were dropped, order kept')
  t.same(store.read('s', 3)!.frames, [frame(4)])
  t.same(store.read('s', 4)!.frames, [])
  t.equal(store.read('other', 0), undefined, 'an unknown stream')
  store.append('other', frame(0))
  t.equal(store.size, 1, 'appending to an unknown stream keeps nothing')
  store.open('s', { scope: '/b', maxFrames: 3 })
  t.same(store.read('s', -1), { scope: '/b', frames: [], ended: false }, 'opening again starts afresh')
})

t.test('an ended stream is kept keepMs, then forgotten; delete forgets at once', async (t) => {
  const store = new InMemoryStreamStore()
  store.open('s', { scope: '/a', maxFrames: 10 })
  store.append('s', frame(0))
  store.end('s', 30)
  t.equal(store.read('s', -1)!.ended, true)
  await eventually(() => store.read('s', -1) === undefined, 'the expiry')
  store.end('gone', 30)
  t.equal(store.size, 0, 'ending an unknown stream is a no-op')
  store.open('d', { scope: '/a', maxFrames: 10 })
  store.end('d', 60_000)
  store.delete('d')
  t.equal(store.size, 0)
})
