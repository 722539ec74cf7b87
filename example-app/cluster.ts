import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { roundRobinProxy } from './round-robin-proxy.js'

// `npm run start:cluster`: two instances of the orders demo sharing Redis
// (resumable streams), PostgreSQL (orders, and the outbox their OrderShipped
// notifications go through) and RabbitMQ (where each instance's outbox
// relay publishes them), behind a round-robin proxy on http://localhost:3000. Reload the page mid-run, or cut a
// connection: the stream resumes on whichever instance the proxy picks.
// PORT is the proxy's; the instances take PORT+1 and PORT+2. With OTEL=1
// each serves its metrics on a port of its own: 9464 and 9465
// (OTEL_EXPORTER_PROMETHEUS_PORT and the next one).
const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const env = {
  ...process.env,
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  AMQP_URL: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
}
if (!Number.isInteger(port) || port < 1 || port > 65533) {
  console.error(`PORT must be a port number below 65534, got ${process.env.PORT}`)
  process.exit(1)
}

const metricsPort = Number(process.env.OTEL_EXPORTER_PROMETHEUS_PORT ?? 9464)
if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65534) {
  console.error(`OTEL_EXPORTER_PROMETHEUS_PORT must be a port number below 65535, got ${process.env.OTEL_EXPORTER_PROMETHEUS_PORT}`)
  process.exit(1)
}

const server = fileURLToPath(new URL('./server.ts', import.meta.url))
// Port 0 stays 0 for both: any free port each.
const upstreams = [1, 2].map((n) => ({ name: `instance-${n}`, host, port: port + n, metricsPort: metricsPort === 0 ? 0 : metricsPort + n - 1 }))

function startInstance ({ name, port, metricsPort }: { name: string, port: number, metricsPort: number }): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', server], {
    env: { ...env, PORT: String(port), HOST: host, INSTANCE: name, OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort) },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  child.once('exit', (code, signal) => {
    if (stopping) return
    // One instance killed (the crash demo): the other goes on, and the proxy sends every GET to it.
    if (children.some((other) => other !== child && other.exitCode === null && other.signalCode === null)) {
      console.error(`${name} exited (${signal ?? code}); the other instance goes on`)
      return
    }
    console.error(`${name} exited (${signal ?? code}); no instance left, stopping the cluster`)
    stop(1)
  })
  return child
}

let stopping = false
const children = upstreams.map(startInstance)
const proxy = roundRobinProxy(upstreams)

function stop (code: number): void {
  if (stopping) return
  stopping = true
  proxy.close()
  proxy.closeAllConnections()
  Promise.all(children.map(async (child) => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  })).then(() => process.exit(code), () => process.exit(1))
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { stop(0) })

/** Resolves once the instance answers; its boot includes connecting to RabbitMQ. */
async function ready ({ host, port }: { host: string, port: number }): Promise<void> {
  for (let tries = 0; tries < 300; tries++) {
    try {
      await fetch(`http://${host}:${port}/health`)
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  throw new Error(`an instance did not start on port ${port}`)
}

await Promise.all(upstreams.map(ready)).catch((error: unknown) => {
  console.error(String(error))
  stop(1)
})
proxy.listen(port, host, () => {
  console.log(`cluster: open http://${host === '0.0.0.0' ? 'localhost' : host}:${port}/ (round robin over ${upstreams.map((u, i) => `${u.name} :${u.port} pid ${children[i]!.pid}`).join(', ')})`)
})
