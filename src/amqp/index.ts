// fastify-cqrs-stream/amqp: a RabbitMQ message broker on amqplib, an
// optional peer dependency. Only this entry point loads amqplib.
export { AmqpMessageBroker } from './amqp-message-broker.js'
export type { AmqpMessageBrokerOptions, AmqpBrokerLogger } from './amqp-options.js'
export { BrokerUnavailableError, BrokerRejectedError } from '../errors.js'
