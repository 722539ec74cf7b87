// The cluster demo's round-robin proxy (example-app/round-robin-proxy.ts)
// in a process of its own, in front of the storm's instances.
// usage: node --import tsx bench/storm/proxy.ts <port> <port>…   (prints `ready <port>`)
import type { AddressInfo } from 'node:net'
import { roundRobinProxy } from '../../example-app/round-robin-proxy.js'

const upstreams = process.argv.slice(2).map((port) => ({ host: '127.0.0.1', port: Number(port) }))
const proxy = roundRobinProxy(upstreams)
proxy.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  console.log(`ready ${(proxy.address() as AddressInfo).port}`)
})
process.on('SIGTERM', () => { process.exit(0) })
