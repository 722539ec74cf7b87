// OpenAPI descriptions of streaming routes, read by @fastify/swagger.
// Fastify never serialises these responses (the stream writes its own
// frames), except the JSON body of a two-step 202.

type JsonSchema = Record<string, unknown>

const errorSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' } },
}

/** The JSON in each frame's `data:` line, for a result schema. */
export function frameSchema (result: JsonSchema | undefined): JsonSchema {
  return {
    oneOf: [
      {
        type: 'object',
        required: ['type', 'streamId'],
        properties: {
          type: { const: 'start' },
          streamId: { type: 'string' },
          cancelUrl: { type: 'string', description: 'DELETE it to cancel a resumable stream.' },
        },
      },
      {
        type: 'object',
        required: ['type', 'data'],
        properties: { type: { const: 'progress' }, data: result ?? {} },
      },
      { type: 'object', required: ['type'], properties: { type: { const: 'complete' } } },
      { type: 'object', required: ['type', 'error'], properties: { type: { const: 'error' }, error: errorSchema } },
    ],
  }
}

/** 200 with an event stream, and the 204 a reconnect gets when nothing is left to send. */
export function streamResponses (result: JsonSchema | undefined): JsonSchema {
  return {
    200: {
      description: 'Server-Sent Events: a `start` frame, a `progress` frame per result, then `complete` or `error`. ' +
        'Each frame has an `id: <streamId>:<seq>` line; the JSON of its `data:` line is described here.',
      content: { 'text/event-stream': { schema: frameSchema(result) } },
    },
    204: {
      description: 'A reconnect (`Last-Event-ID`) with nothing left to send: EventSource stops for good.',
      type: 'null',
    },
  }
}

/** The 202 of a two-step POST. */
export const acceptedResponse = {
  202: {
    description: 'The command is accepted; GET `url` (e.g. with EventSource) to run it and stream its frames.',
    type: 'object',
    required: ['streamId', 'url'],
    properties: { streamId: { type: 'string' }, url: { type: 'string' } },
  },
}

export const streamIdParams = {
  type: 'object',
  required: ['streamId'],
  properties: { streamId: { type: 'string', minLength: 1, maxLength: 200 } },
}

/** Fastify's JSON error body, as a stream url's 404 sends it. */
export const notFoundResponse = {
  404: {
    description: 'No such stream: never created, not claimed in time, or expired (FST_ERR_CQRS_STREAM_NOT_FOUND).',
    type: 'object',
    properties: {
      statusCode: { type: 'integer' },
      code: { type: 'string' },
      error: { type: 'string' },
      message: { type: 'string' },
    },
  },
}

/** Fastify's JSON error body, as a stream route's 400 sends it. */
export const badRequestResponse = {
  400: {
    description: 'The command (the body, or the query string of a GET) does not match its schema (FST_ERR_VALIDATION), or a body is not valid JSON. Nothing ran.',
    type: 'object',
    properties: {
      statusCode: { type: 'integer' },
      code: { type: 'string' },
      error: { type: 'string' },
      message: { type: 'string' },
    },
  },
}

const LAST_EVENT_ID = 'The id (`<streamId>:<seq>`) of the last frame received. The command never runs again: ' +
  'a resumable stream sends the frames after it, then the live ones; anything else answers 204.'

/** The `Last-Event-ID` header of a reconnect, documented on every route that takes one. */
export const lastEventIdHeader = {
  'last-event-id': { type: 'string', description: `Sent by EventSource when it reconnects. ${LAST_EVENT_ID}` },
}

/** Its query-string twin, for a first request that cannot set headers (EventSource after a page reload). */
export const lastEventIdQuery = {
  lastEventId: { type: 'string', description: `The Last-Event-ID header, for clients that cannot send it. ${LAST_EVENT_ID}` },
}

/**
 * `schema` (an object schema, or none) with `properties` added. The
 * `lastEventId` parameter is taken out of the query before validation, so
 * declaring it documents it without changing what is accepted.
 */
export function withProperties (schema: unknown, properties: JsonSchema): JsonSchema {
  const own = (typeof schema === 'object' && schema !== null ? schema : { type: 'object' }) as { properties?: JsonSchema }
  return { ...own, type: 'object', properties: { ...own.properties, ...properties } }
}
