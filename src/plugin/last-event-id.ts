import type { FastifyRequest } from 'fastify'

/** A parsed frame id: `<streamId>:<seq>`. */
export interface EventId {
  readonly streamId: string
  readonly seq: number
}

const QUERY_PARAMETER = 'lastEventId'
const SEQ = /^(?:0|[1-9]\d{0,14})$/

// Ids taken out of the query string before validation, so a command schema
// with `additionalProperties: false` does not reject a reconnect.
const fromQuery = new WeakMap<FastifyRequest, string>()

// Fastify's query string parser always gives an object.
function queryOf (request: FastifyRequest): Record<string, unknown> {
  return request.query as Record<string, unknown>
}

/**
 * Moves a `lastEventId` query parameter (for clients that cannot set the
 * `Last-Event-ID` header) out of `request.query`. Runs before validation.
 */
export function takeLastEventIdParameter (request: FastifyRequest): void {
  const query = queryOf(request)
  if (!(QUERY_PARAMETER in query)) return
  const value = query[QUERY_PARAMETER]
  delete query[QUERY_PARAMETER]
  fromQuery.set(request, Array.isArray(value) ? String(value[0]) : String(value))
}

/**
 * The id a reconnecting client sent: the `Last-Event-ID` header, else the
 * `lastEventId` query parameter; undefined on a first request.
 */
export function lastEventIdOf (request: FastifyRequest): string | undefined {
  const header = request.headers['last-event-id']
  if (typeof header === 'string') return header
  const taken = fromQuery.get(request)
  if (taken !== undefined) return taken
  const value = queryOf(request)[QUERY_PARAMETER]
  return value === undefined ? undefined : String(value)
}

/** `<streamId>:<seq>` split at its last colon; undefined when malformed. */
export function parseEventId (value: string): EventId | undefined {
  const colon = value.lastIndexOf(':')
  if (colon <= 0) return undefined
  const seq = value.slice(colon + 1)
  if (!SEQ.test(seq)) return undefined
  return { streamId: value.slice(0, colon), seq: Number(seq) }
}
