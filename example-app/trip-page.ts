// The saga page served at GET /trips: books a trip (GET /trips/book) and
// shows each step's state as its frames arrive, its compensation too.
// Elements carry data-testid for the tests.
export const tripPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>fastify-cqrs-stream: book a trip</title>
  <link rel="icon" href="data:,">
  <style>
    body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; padding: 0 1rem }
    form { display: flex; gap: .5rem; flex-wrap: wrap; align-items: center }
    button, select { font: inherit; padding: .3rem .8rem }
    ol { padding-left: 1.25rem }
    li[data-status=done] { color: #1a7f37 }
    li[data-status=compensating] { color: #9a6700 }
    li[data-status=compensated] { color: #57606a; text-decoration: line-through }
    #status[data-state=failed] { color: #cf222e }
  </style>
</head>
<body>
  <h1>Book a trip</h1>
  <p>A saga of three steps (<code>GET /trips/book</code>): each step's frame arrives when it is done;
  when one fails, or you cancel, the completed ones are undone, last first.</p>
  <form id="trip" data-testid="trip">
    <label for="fail-at">Make a step fail</label>
    <select id="fail-at" data-testid="fail-at">
      <option value="0">none</option>
      <option value="1">reserve hotel</option>
      <option value="2">reserve flight</option>
      <option value="3">charge card</option>
    </select>
    <button id="book" data-testid="book" type="submit">Book</button>
    <button id="cancel" data-testid="cancel" type="button" disabled>Cancel</button>
  </form>
  <ol id="steps" data-testid="steps">
    <li data-step="ReserveHotel">Reserve hotel: <span>waiting</span></li>
    <li data-step="ReserveFlight">Reserve flight: <span>waiting</span></li>
    <li data-step="ChargeCard">Charge card: <span>waiting</span></li>
  </ol>
  <p>Status: <span id="status" data-testid="status" data-state="idle">idle</span></p>
  <script type="module">
    import { streamCommand } from '/client/index.js'
    const form = document.getElementById('trip')
    const failAt = document.getElementById('fail-at')
    const book = document.getElementById('book')
    const cancel = document.getElementById('cancel')
    const status = document.getElementById('status')
    let controller
    const setStatus = (state, text) => { status.dataset.state = state; status.textContent = text }
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      for (const item of document.querySelectorAll('#steps li')) {
        item.dataset.status = ''
        item.querySelector('span').textContent = 'waiting'
      }
      controller = new AbortController()
      book.disabled = true
      cancel.disabled = false
      setStatus('running', 'running…')
      const query = new URLSearchParams({ tripId: crypto.randomUUID(), failAt: failAt.value })
      try {
        for await (const frame of streamCommand('/trips/book?' + query, { signal: controller.signal })) {
          if (frame.type !== 'progress') continue
          const item = document.querySelector('#steps li[data-step="' + frame.data.step + '"]')
          item.dataset.status = frame.data.status
          item.querySelector('span').textContent = frame.data.status
        }
        setStatus('complete', 'booked')
      } catch (error) {
        setStatus('failed', controller.signal.aborted ? 'cancelled: compensated' : (error.code ?? 'error') + ': ' + error.message)
      } finally {
        book.disabled = false
        cancel.disabled = true
      }
    })
    cancel.addEventListener('click', () => { controller?.abort(new DOMException('Cancelled on the page', 'AbortError')) })
    form.dataset.ready = 'true'
  </script>
</body>
</html>
`
