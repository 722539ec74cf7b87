// Type tests of the RabbitMQ broker, fastify-cqrs-stream/amqp (see expect.ts).
import Fastify from 'fastify'
import fastifyCqrsStream, { errors, type BrokerMessage, type MessageBroker } from '../../src/index.js'
import {
  AmqpMessageBroker, BrokerRejectedError, BrokerUnavailableError, type AmqpBrokerLogger, type AmqpMessageBrokerOptions,
} from '../../src/amqp/index.js'
import { expectAssignable, expectExact, expectTrue, use, type Equal } from './expect.js'

export async function wire (): Promise<void> {
  // connect() is the only way in: it resolves to a connected broker.
  const broker = await AmqpMessageBroker.connect({ url: 'amqp://localhost', exchange: 'orders.events' })
  expectTrue<Equal<typeof broker, AmqpMessageBroker>>()
  expectAssignable<MessageBroker>(broker)
  expectExact<Promise<void>>()(broker.send({ messageName: 'OrderShipped', messageId: 'id', topic: 'orders.shipped', payload: {} } satisfies BrokerMessage))
  expectExact<Promise<void>>()(broker.close())
  expectExact<string>()(broker.exchange)
  expectExact<boolean>()(broker.connected)
  // @ts-expect-error the constructor is private: use connect()
  use(new AmqpMessageBroker())
  // @ts-expect-error connected is read-only
  broker.connected = false

  // The plugin takes it as its messageBroker; close it in an onClose hook.
  const app = Fastify()
  await app.register(fastifyCqrsStream, { messageBroker: broker })
  app.addHook('onClose', () => broker.close())

  // The url is a string or amqplib's connect object; every other option is typed.
  const full: AmqpMessageBrokerOptions = {
    url: { protocol: 'amqps', hostname: 'rabbit', port: 5671, username: 'app', password: 'secret', vhost: 'orders', heartbeat: 10 },
    exchange: 'orders.events',
    socketOptions: { clientProperties: { connection_name: 'orders-api' }, ca: ['-----BEGIN CERTIFICATE-----'] },
    connectTimeoutMs: 5000,
    sendTimeoutMs: 10_000,
    reconnectInitialDelayMs: 100,
    reconnectMaxDelayMs: 5000,
    logger: app.log,
  }
  use(AmqpMessageBroker.connect(full))
  // A pino-like logger, info optional.
  expectAssignable<AmqpBrokerLogger>({ warn: (object: object, message: string) => use(object, message), error: () => {} })
  expectAssignable<AmqpBrokerLogger>(console)
  // @ts-expect-error the exchange is required
  use(AmqpMessageBroker.connect({ url: 'amqp://localhost' }))
  // @ts-expect-error the url is required
  use(AmqpMessageBroker.connect({ exchange: 'orders.events' }))
  // @ts-expect-error timeouts are numbers of ms
  use(AmqpMessageBroker.connect({ url: 'amqp://localhost', exchange: 'x', sendTimeoutMs: '10s' }))
  // @ts-expect-error a logger needs warn and error
  use(AmqpMessageBroker.connect({ url: 'amqp://localhost', exchange: 'x', logger: { info: () => {} } }))
  // @ts-expect-error no such option
  use(AmqpMessageBroker.connect({ url: 'amqp://localhost', exchange: 'x', queue: 'orders' }))

  // The errors are the package's own, also under `errors`.
  expectTrue<Equal<typeof BrokerUnavailableError, typeof errors.BrokerUnavailableError>>()
  expectTrue<Equal<typeof BrokerRejectedError, typeof errors.BrokerRejectedError>>()
}
