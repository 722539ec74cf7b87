// fastify-cqrs-stream/postgres: a transactional outbox on PostgreSQL (pg,
// an optional peer dependency), the relay that publishes it, and saga storage. Only this
// entry point deals with pg; the main entry never imports it.
export { PostgresOutbox } from './postgres-outbox.js'
export type { PostgresOutboxOptions, DeadOutboxRow } from './postgres-outbox.js'
export { OutboxRelay } from './outbox-relay.js'
export type { OutboxRelayStats } from './outbox-relay.js'
export type { OutboxRelayOptions, OutboxRelayLogger } from './relay-options.js'
export { ItemTransaction } from './item-transaction.js'
export type { ItemTransactions } from './item-transactions.js'
export { ItemTransactionEndedError, ItemTransactionMissingError, ItemTransactionRolledBackError } from '../errors.js'
export { PostgresSagaStorage } from './postgres-saga-storage.js'
export type { PostgresSagaStorageOptions } from './postgres-saga-storage.js'
