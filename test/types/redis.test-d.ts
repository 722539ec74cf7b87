// Type tests of the Redis stream store, fastify-cqrs-stream/redis (see expect.ts).
import Fastify from 'fastify'
import { Cluster, Redis } from 'ioredis'
import fastifyCqrsStream, { isSharedStore, type SharedStreamStore, type StoredCommand, type StoredStream, type StreamSignal, type StreamStore, type TakenCommand } from '../../src/index.js'
import { RedisStreamStore, type RedisStreamStoreOptions } from '../../src/redis/index.js'
import { expectAssignable, expectExact, expectTrue, use, type Equal } from './expect.js'

export async function wire (): Promise<void> {
  // A URL, ioredis options, or the app's own client.
  const store = new RedisStreamStore({ redis: 'redis://127.0.0.1:6379', keyPrefix: 'orders:', idleTtlMs: 60_000, blockMs: 1000 })
  use(new RedisStreamStore({ redis: { host: '127.0.0.1', port: 6379 } }))
  use(new RedisStreamStore({ redis: new Redis(), logger: { warn (_object: object, _message: string) {} } }))
  // Redis Cluster: a Cluster client.
  use(new RedisStreamStore({ redis: new Cluster([{ host: '127.0.0.1', port: 7000 }]) }))
  expectAssignable<SharedStreamStore>(store)
  expectAssignable<StreamStore>(store)
  expectExact<Redis | Cluster>()(store.redis)
  expectExact<Promise<void>>()(store.close())
  expectExact<Promise<StoredStream | undefined>>()(store.read('id', 0))
  const stop = await store.onSignal((message) => {
    expectTrue<Equal<typeof message, StreamSignal>>()
    if (message.type === 'follow') expectExact<number>()(message.seq)
    // @ts-expect-error only follow signals carry a seq
    if (message.type === 'cancel') use(message.seq)
  })
  expectExact<() => void>()(stop)

  // Two-step commands kept for a GET on any instance.
  const command: StoredCommand = { scope: '/orders', data: '{"command":{}}' }
  expectExact<Promise<void>>()(store.putCommand('id', command, 30_000))
  const taken = await store.takeCommand('id', ['/orders'], 30_000)
  expectTrue<Equal<typeof taken, TakenCommand>>()
  if (taken?.taken === true) expectExact<string>()(taken.command.data)
  else if (taken !== undefined) expectExact<string>()(taken.scope)
  // @ts-expect-error scopes is a list
  use(store.takeCommand('id', '/orders', 0))

  const app = Fastify()
  await app.register(fastifyCqrsStream, { streamStore: store })

  // A plain StreamStore narrows to a shared one.
  const plain: StreamStore = store
  if (isSharedStore(plain)) expectExact<SharedStreamStore>()(plain)

  // @ts-expect-error redis is required
  use(new RedisStreamStore({ keyPrefix: 'x' }))
  // @ts-expect-error keyPrefix is a string
  use(new RedisStreamStore({ redis: 'redis://x', keyPrefix: 1 }))
  const options: RedisStreamStoreOptions = { redis: 'redis://127.0.0.1' }
  use(options)
}
