import { createServer, request, type Server, type ServerResponse } from 'node:http'

export interface Upstream {
  readonly host: string
  readonly port: number
}

/** `POST` it to cut every response in flight, as a network blip would. */
export const CUT_PATH = '/_proxy/cut'

/**
 * A tiny load balancer for the cluster demo: each request goes to the next
 * upstream in turn, and the response streams back as it comes (no
 * buffering, so SSE frames arrive live). A client that leaves closes the
 * upstream request, so the instance sees the disconnect.
 */
export function roundRobinProxy (upstreams: readonly Upstream[]): Server {
  let next = 0
  const inFlight = new Set<ServerResponse>()
  return createServer((req, res) => {
    if (req.method === 'POST' && req.url === CUT_PATH) {
      const cut = inFlight.size
      for (const response of inFlight) response.destroy()
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ cut }))
      return
    }
    const bodyless = req.method === 'GET' || req.method === 'HEAD'
    const forwardTo = (tries: number): void => {
      const target = upstreams[next]!
      next = (next + 1) % upstreams.length
      const forward = request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers)
        answer.pipe(res)
        // An instance that drops the stream: the client must see a cut, not an end, to reconnect.
        answer.on('close', () => { if (!answer.complete) res.destroy() })
      })
      // Only before a response: once it has begun, Node reports a failure on
      // the response, whose 'close' cuts the client (tested for GET and POST).
      // A GET (an EventSource reconnect) tries the next instance, as nginx's
      // proxy_next_upstream does: one that was killed does not answer it.
      forward.on('error', () => {
        if (bodyless && tries < upstreams.length) {
          forwardTo(tries + 1)
          return
        }
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`upstream ${target.host}:${target.port} is unreachable\n`)
      })
      res.once('close', () => { forward.destroy() })
      if (bodyless) forward.end()
      else req.pipe(forward)
    }
    inFlight.add(res)
    res.on('close', () => { inFlight.delete(res) })
    forwardTo(1)
  })
}
