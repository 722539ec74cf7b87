// The demo page served at GET /: plain HTML and a few lines of script, no
// bundler. It opens an EventSource on the GET streaming route, lists every
// frame, and closes the EventSource on the last frame: EventSource would
// otherwise reconnect when the server ends the response and run the
// command again.
export const indexPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>fastify-cqrs-stream: orders</title>
  <style>
    body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; padding: 0 1rem }
    code, li { font-family: ui-monospace, monospace; font-size: 13px }
    li { white-space: pre-wrap; word-break: break-all }
  </style>
</head>
<body>
  <h1>Processing orders a, b and c</h1>
  <p>Frames of <code>GET /orders/process?orderIds=a&amp;orderIds=b&amp;orderIds=c</code>, as EventSource receives them:</p>
  <ol id="frames"></ol>
  <p id="status">connecting…</p>
  <button id="again" type="button">Run again</button>
  <script type="module">
    const frames = document.getElementById('frames')
    const status = document.getElementById('status')

    function run () {
      frames.replaceChildren()
      status.textContent = 'connecting…'
      const source = new EventSource('/orders/process?orderIds=a&orderIds=b&orderIds=c')
      source.onmessage = (event) => {
        const item = document.createElement('li')
        item.textContent = 'id: ' + event.lastEventId + '\\n' + event.data
        frames.append(item)
        const frame = JSON.parse(event.data)
        if (frame.type === 'start') status.textContent = 'streaming…'
        if (frame.type === 'complete' || frame.type === 'error') {
          // The last frame: close, or EventSource reconnects and runs the command again.
          source.close()
          status.textContent = frame.type === 'complete' ? 'complete' : 'failed: ' + frame.error.code
        }
      }
      source.onerror = () => {
        source.close()
        status.textContent = 'connection lost'
      }
    }

    document.getElementById('again').addEventListener('click', run)
    run()
  </script>
</body>
</html>
`
