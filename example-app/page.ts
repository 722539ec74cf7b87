// The demo page served at GET /: plain HTML and a module script, no bundler.
// It imports the typed client from /client/index.js (src/client/, served as
// plain ESM by app.ts) and streams GET /orders/process with it: the client
// uses EventSource, closes it on the last frame (EventSource would
// otherwise reconnect and run the command again), resumes a dropped
// connection with Last-Event-ID, and cancels the command when the signal
// aborts. Elements carry ids and data-testid for the browser tests.
export const indexPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>fastify-cqrs-stream: orders</title>
  <link rel="icon" href="data:,">
  <style>
    body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; padding: 0 1rem }
    form { display: flex; gap: .5rem; flex-wrap: wrap; align-items: center }
    #order-ids { flex: 1; min-width: 14rem; font: inherit; padding: .3rem .5rem }
    button { font: inherit; padding: .3rem 1rem }
    .bar { display: flex; gap: .75rem; align-items: center; margin: 1rem 0 .5rem }
    progress { flex: 1; height: 1.25rem }
    #status[data-state=complete] { color: #1a7f37 }
    #status[data-state=failed] { color: #cf222e }
    #reconnecting { color: #9a6700 }
    #error { color: #cf222e; white-space: pre-wrap }
    #results { font-family: ui-monospace, monospace; font-size: 13px }
  </style>
</head>
<body>
  <h1>Processing orders</h1>
  <p>Each order takes a moment on the server; its result arrives as soon as it is done
  (<code>GET /orders/process?orderIds=…</code>, streamed with <code>streamCommand()</code>
  from <code>fastify-cqrs-stream/client</code>).</p>
  <form id="command" data-testid="command">
    <label for="order-ids">Order ids</label>
    <input id="order-ids" data-testid="order-ids" name="orderIds" value="a,b,c,d,e,f,g,h" autocomplete="off"
      aria-describedby="order-ids-help">
    <button id="start" data-testid="start" type="submit">Start</button>
    <button id="cancel" data-testid="cancel" type="button" disabled>Cancel</button>
  </form>
  <p id="order-ids-help"><small>Comma separated, 1 to 100 ids.</small></p>
  <div class="bar">
    <progress id="progress" data-testid="progress" max="1" value="0" aria-label="orders processed"></progress>
    <span id="progress-text" data-testid="progress-text">0 / 0</span>
  </div>
  <p>
    <span id="status" data-testid="status" data-state="idle" role="status">ready</span>
    <span id="reconnecting" data-testid="reconnecting" data-count="0" hidden>reconnecting…</span>
  </p>
  <p id="error" data-testid="error" role="alert" hidden></p>
  <ol id="results" data-testid="results"></ol>
  <script type="module">
    import { streamCommand } from '/client/index.js'

    const form = document.getElementById('command')
    const input = document.getElementById('order-ids')
    const startButton = document.getElementById('start')
    const cancelButton = document.getElementById('cancel')
    const progress = document.getElementById('progress')
    const progressText = document.getElementById('progress-text')
    const status = document.getElementById('status')
    const reconnecting = document.getElementById('reconnecting')
    const errorBox = document.getElementById('error')
    const results = document.getElementById('results')
    let controller

    function setStatus (state, text) {
      status.dataset.state = state
      status.textContent = text
    }

    function setProgress (processed, total) {
      progress.max = total
      progress.value = processed
      progressText.textContent = processed + ' / ' + total
    }

    function showError (text) {
      errorBox.textContent = text
      errorBox.hidden = false
    }

    function setRunning (running) {
      startButton.disabled = running
      cancelButton.disabled = !running
      input.disabled = running
    }

    // The run in progress, kept across a reload of the page: where it got to
    // and what it showed. A reload resumes the stream instead of sending the
    // command again, on whichever instance the request reaches.
    const SAVED = 'orders-demo.run'
    const load = () => { try { return JSON.parse(sessionStorage.getItem(SAVED)) } catch { return null } }
    const save = (run) => { sessionStorage.setItem(SAVED, JSON.stringify(run)) }
    const forget = () => { sessionStorage.removeItem(SAVED) }
    // Leaving or reloading the page drops the connection (Chromium cuts it
    // as the navigation starts, before pagehide): not a failure, the run
    // stays saved.
    let leaving = false
    for (const type of ['beforeunload', 'pagehide']) addEventListener(type, () => { leaving = true })

    function showResult (text, orderId) {
      const item = document.createElement('li')
      item.dataset.orderId = orderId
      item.textContent = text
      results.append(item)
    }

    async function run (orderIds, saved) {
      results.replaceChildren()
      errorBox.hidden = true
      reconnecting.hidden = true
      reconnecting.dataset.count = '0'
      setProgress(0, orderIds.length)
      if (orderIds.length === 0) {
        setStatus('failed', 'failed')
        showError('Enter at least one order id.')
        return
      }
      controller = new AbortController()
      const signal = controller.signal
      setRunning(true)
      const query = new URLSearchParams(orderIds.map((id) => ['orderIds', id]))
      const state = saved ?? { orderIds, lastEventId: undefined, cancelUrl: undefined, streamId: undefined, results: [] }
      if (saved === undefined) {
        setStatus('connecting', 'connecting…')
      } else {
        for (const result of state.results) showResult(result.text, result.orderId)
        setProgress(state.results.length, orderIds.length)
        setStatus('streaming', 'resuming…')
        status.dataset.streamId = state.streamId
        status.dataset.resumed = 'true'
      }
      try {
        const frames = streamCommand('/orders/process?' + query, {
          signal,
          resume: saved === undefined ? undefined : { lastEventId: saved.lastEventId, cancelUrl: saved.cancelUrl },
          onReconnecting: ({ attempt }) => {
            reconnecting.hidden = false
            reconnecting.dataset.count = String(Number(reconnecting.dataset.count) + 1)
            reconnecting.textContent = 'reconnecting… (attempt ' + attempt + ')'
          },
        })
        for await (const frame of frames) {
          reconnecting.hidden = true
          if (frame.type === 'start') {
            setStatus('streaming', 'streaming…')
            status.dataset.streamId = frame.streamId
            Object.assign(state, { streamId: frame.streamId, cancelUrl: frame.cancelUrl, lastEventId: frame.id })
            save(state)
          } else if (frame.type === 'progress') {
            setStatus('streaming', 'streaming…')
            const text = frame.data.orderId + ': ' + frame.data.status + ', ' + frame.data.itemsCount +
              ' item(s) at ' + new Date(frame.data.processedAt).toLocaleTimeString()
            showResult(text, frame.data.orderId)
            state.results.push({ text, orderId: frame.data.orderId })
            state.lastEventId = frame.id
            save(state)
            setProgress(state.results.length, orderIds.length)
          } else {
            forget()
            setStatus('complete', 'complete')
          }
        }
      } catch (error) {
        if (leaving) return
        forget()
        reconnecting.hidden = true
        if (signal.aborted) {
          setStatus('cancelled', 'cancelled')
        } else {
          setStatus('failed', 'failed')
          showError((error.code ? error.code + ': ' : '') + error.message)
        }
      } finally {
        setRunning(false)
      }
    }

    form.addEventListener('submit', (event) => {
      event.preventDefault()
      run(input.value.split(',').map((id) => id.trim()).filter((id) => id !== ''))
    })
    cancelButton.addEventListener('click', () => {
      controller?.abort(new DOMException('Cancelled on the page', 'AbortError'))
    })
    const saved = load()
    if (saved?.lastEventId !== undefined && Array.isArray(saved.orderIds)) {
      input.value = saved.orderIds.join(', ')
      run(saved.orderIds, saved)
    }
    form.dataset.ready = 'true'
  </script>
</body>
</html>
`
