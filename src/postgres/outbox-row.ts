import type { BrokerMessage } from '../brokers/message-broker.js'

/** The columns of an outbox row that make its message. */
export interface OutboxMessageRow {
  event_id: string
  topic: string
  name: string
  payload: Record<string, unknown>
  headers: Record<string, string> | null
}

/** The row's message as the broker gets it, with the headers kept with it. */
export const messageOfRow = (row: OutboxMessageRow): BrokerMessage => row.headers === null
  ? { messageName: row.name, messageId: row.event_id, topic: row.topic, payload: row.payload }
  : { messageName: row.name, messageId: row.event_id, topic: row.topic, payload: row.payload, headers: row.headers }
