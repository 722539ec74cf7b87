import { randomUUID } from 'node:crypto'
import {
  errorCodes, type FastifyInstance, type FastifyReply, type FastifyRequest,
  type onRequestHookHandler, type preValidationAsyncHookHandler, type RouteOptions,
} from 'fastify'
import { InvalidRouteError, NoHandlerError, StreamCancelledError, StreamNotFoundError } from '../errors.js'
import type { StreamingRequestMediator } from '../mediator/streaming-request-mediator.js'
import { isRequestClass, resultSchemaOf, type ResultSpec } from '../messages/request.js'
import { isResponseClass } from '../messages/response.js'
import { RESUME_DEFAULTS } from '../resume/resume-settings.js'
import type { RequestMessage } from '../messages/request.js'
import { isSharedStore, type StoredCommand } from '../resume/stream-store.js'
import type { EventStreamSource } from '../sse/stream-run.js'
import { startRun, type EventStreamOptions, type RouteResume, type StreamDefaults } from './event-stream-reply.js'
import { lastEventIdOf, parseEventId, takeLastEventIdParameter } from './last-event-id.js'
import type { OpenStreams } from './open-streams.js'
import type { Admission } from './admission.js'
import type { PendingStreams } from './pending-streams.js'
import { requestScope, validateStreamOwner, type RequestScope, type StreamOwner } from './stream-owner.js'
import { resolvePositiveSettings, validateStreamSettings } from './plugin-options.js'
import { resultSerializer } from './result-serializer.js'
import { noContent, resumeStream } from './reconnect.js'
import {
  acceptedResponse, badRequestResponse, lastEventIdHeader, lastEventIdQuery, notFoundResponse, streamIdParams,
  streamResponses, withProperties,
} from './route-schemas.js'
import { TWO_STEP_DEFAULTS, type StreamRouteOptions } from './stream-route-options.js'

const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i

// A command is JSON. Without this, Fastify's own text/plain parser hands the
// schema a string and the client gets a puzzling 400 instead of a 415 (a
// browser fetch() with a string body sends text/plain).
const requireJson: preValidationAsyncHookHandler = async (request) => {
  const type = request.headers['content-type']
  if (type !== undefined && !JSON_MEDIA_TYPE.test(type)) throw new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(type)
}

const takeLastEventId: onRequestHookHandler = (request, _reply, done) => {
  takeLastEventIdParameter(request)
  done()
}

/** What the plugin shares with its stream routes. */
export interface StreamServices {
  readonly mediator: StreamingRequestMediator
  readonly open: OpenStreams
  readonly pending: PendingStreams
  readonly admission: Admission
  /** The plugin's `streamOwner`; a route may set its own. */
  readonly streamOwner: StreamOwner | undefined
  readonly defaults: StreamDefaults
  /** Scopes that already have their `DELETE <url>/:streamId` route. */
  readonly cancelRoutes: Set<string>
}

type JsonSchema = Record<string, unknown>
interface StreamParams { streamId: string }
type Hooks = RouteOptions['onRequest']

/** How logs name a route's result: its class, or the schema's `$id`/`title`. */
function resultName (result: ResultSpec, requestName: string): string {
  if (isResponseClass(result)) return result.name
  const { $id, title } = result as { $id?: unknown, title?: unknown }
  return typeof $id === 'string' ? $id : typeof title === 'string' ? title : `the result schema of ${requestName}`
}

/** The request's path without query string or trailing slash: the base of its stream urls. */
function pathOf (request: FastifyRequest): string {
  const url = request.url
  const query = url.indexOf('?')
  return (query === -1 ? url : url.slice(0, query)).replace(/\/+$/, '')
}

function withStreamId (params: unknown): JsonSchema {
  if (typeof params !== 'object' || params === null) return streamIdParams
  const own = params as { required?: string[], properties?: JsonSchema }
  return {
    type: 'object',
    required: [...(own.required ?? []), 'streamId'],
    properties: { ...own.properties, ...streamIdParams.properties },
  }
}

/** `first`, then the route's own hooks of that kind. */
function hooks (first: onRequestHookHandler, own: Hooks): Hooks {
  return [first, ...[own ?? []].flat()] as Hooks
}

/** Builds the `app.streamRoute` decorator. */
export function streamRouteDecorator (services: StreamServices) {
  const { mediator, open, pending, admission, defaults, cancelRoutes } = services
  return function streamRoute (this: FastifyInstance, options: StreamRouteOptions): FastifyInstance {
    if (typeof options !== 'object' || options === null) throw new InvalidRouteError('needs an options object')
    const {
      method, url, request: RequestType, response, schema, eventStream, resume: resumeOption, twoStep: twoStepOption,
      streamOwner: routeOwner, caller, ...routeOptions
    } = options
    if (method !== 'GET' && method !== 'POST') throw new InvalidRouteError(`method must be 'GET' or 'POST', got ${String(method)}`)
    if (typeof url !== 'string') throw new InvalidRouteError('needs a url')
    if (!isRequestClass(RequestType)) throw new InvalidRouteError('option "request" must be a class made by Request()')
    if (!mediator.requestMap.has(RequestType)) throw new NoHandlerError(RequestType.name, RequestType.name)
    if (twoStepOption !== undefined && method !== 'POST') throw new InvalidRouteError('twoStep needs method \'POST\'')
    validateStreamSettings(eventStream ?? {})
    const streamOwner = validateStreamOwner(routeOwner, 'streamRoute streamOwner') ?? services.streamOwner
    if (caller !== undefined && typeof caller !== 'function') throw new InvalidRouteError('option "caller" must be a function (request) => JSON value')
    const twoStep = twoStepOption === undefined ? undefined : resolvePositiveSettings('twoStep', twoStepOption, TWO_STEP_DEFAULTS)
    const resume = resumeOption === undefined && twoStep === undefined
      ? undefined
      : resolvePositiveSettings('resume', resumeOption ?? true, RESUME_DEFAULTS)
    const declared = RequestType.result
    if (response !== undefined && declared !== undefined && response !== declared) {
      throw new InvalidRouteError(`option "response" is not the result of "${RequestType.name}": leave it out, its result serialises the frames`)
    }
    const result = response ?? declared
    const resultSchema = resultSchemaOf(result)
    const serialize = resultSchema === undefined
      ? undefined
      : resultSerializer(resultSchema, `${method} ${this.prefix}${url}`, resultName(result as ResultSpec, RequestType.name))
    const streamOptions: EventStreamOptions = { ...eventStream, serialize }
    const heartbeatMs = eventStream?.heartbeatMs ?? defaults.heartbeatMs
    const namedEvents = eventStream?.namedEvents ?? defaults.namedEvents
    const scope = `${this.prefix}${url}`
    const responses = { ...streamResponses(resultSchema as JsonSchema | undefined), ...schema?.response as JsonSchema | undefined }
    const route = `${method} ${scope}`
    const streamUrl = `${url.replace(/\/+$/, '')}/:streamId`
    // Only for a resumable route (twoStep implies resume). `key`: the scope a stream is kept under (route and owner).
    const routeResume = (cancelPath: string, key: string): RouteResume => ({
      scope: key, cancelPath, maxBufferedBytes: admission.maxBufferedBytes, ...resume!,
    })
    const scopeOf = (request: FastifyRequest): Promise<RequestScope> => requestScope(request, scope, streamOwner)

    // No signal: the run stops a mediator stream directly (terminate), so
    // one AbortController per stream is enough.
    const sourceFrom = (command: RequestMessage, request: FastifyRequest, callerValue: unknown): EventStreamSource<unknown> =>
      ({ streamId }) => mediator.stream(command, { streamId, values: { fastifyRequest: request, caller: callerValue } })
    const sourceOf = async (request: FastifyRequest): Promise<EventStreamSource<unknown>> =>
      sourceFrom(new RequestType(method === 'GET' ? request.query as never : request.body as never), request, await caller?.(request))
    /**
     * A posted two-step command as it waits for its GET, on any instance:
     * its validated data and its caller, as JSON (so it is the same
     * whether the GET comes here or elsewhere).
     */
    const posted = async (request: FastifyRequest, key: string): Promise<StoredCommand> =>
      ({ scope: key, data: JSON.stringify({ command: request.body, caller: await caller?.(request) }) })
    /** The stream of a taken two-step command, run for the GET `request`; validated again, as it may come from another instance. */
    const claimedSource = (command: StoredCommand, request: FastifyRequest): EventStreamSource<unknown> => {
      const data = JSON.parse(command.data) as { command: unknown, caller?: unknown }
      return sourceFrom(RequestType.parse(data.command), request, data.caller)
    }

    /**
     * A request with `Last-Event-ID`: resumed when the route is resumable
     * and it can be done exactly, else 204. A stream of another owner is
     * unknown to `requestScope`: 204 too.
     */
    const reconnect = (reply: FastifyReply, lastEventId: string, requestScope: RequestScope, streamId?: string): Promise<FastifyReply> | FastifyReply => {
      const id = parseEventId(lastEventId)
      if (resume === undefined || id === undefined || (streamId !== undefined && id.streamId !== streamId)) return noContent(reply)
      return resumeFrom(reply, id.streamId, id.seq, requestScope, streamId !== undefined)
    }
    /** `notFound`: a two-step url, which answers 404 for a stream it does not know. */
    const resumeFrom = async (reply: FastifyReply, streamId: string, afterSeq: number, requestScope: RequestScope, notFound: boolean): Promise<FastifyReply> => {
      const result = await resumeStream(reply, streamId, afterSeq, { scope: requestScope, open, heartbeatMs, settings: resume!, namedEvents })
      if (result === 'unknown' && notFound) throw new StreamNotFoundError(streamId)
      return result === 'attached' ? reply : noContent(reply)
    }

    const preValidation = method === 'POST'
      ? [requireJson, ...[routeOptions.preValidation ?? []].flat()]
      : routeOptions.preValidation
    this.route({
      ...routeOptions,
      onRequest: hooks(takeLastEventId, routeOptions.onRequest),
      preValidation,
      method,
      url,
      schema: {
        ...schema,
        headers: withProperties(schema?.headers, lastEventIdHeader),
        ...(method === 'GET'
          ? { querystring: withProperties(RequestType.schema, lastEventIdQuery) }
          : { body: RequestType.schema, querystring: withProperties(undefined, lastEventIdQuery) }),
        response: {
          ...(twoStep === undefined ? responses : { ...acceptedResponse, 204: responses[204] }),
          ...badRequestResponse,
          ...schema?.response as JsonSchema | undefined,
        },
      },
      async handler (request: FastifyRequest, reply: FastifyReply) {
        const lastEventId = lastEventIdOf(request)
        const requestScope = await scopeOf(request)
        if (lastEventId !== undefined) return reconnect(reply, lastEventId, requestScope)
        // Refused (503, 429) before the command is built: nothing runs.
        admission.admit(reply, requestScope.ownerDigest, twoStep !== undefined)
        const streamId = randomUUID()
        if (twoStep !== undefined) {
          await pending.add(streamId, await posted(request, requestScope.key), twoStep.claimTimeoutMs, requestScope.ownerDigest, requestScope.route)
          return reply.code(202).send({ streamId, url: `${pathOf(request)}/${streamId}` })
        }
        // The stream url is worked out only for a resumable route, which sends it as cancelUrl.
        const resumeOf = resume === undefined ? undefined : routeResume(`${pathOf(request)}/<id>`, requestScope.key)
        return startRun(reply, await sourceOf(request), streamOptions, defaults, open, true, resumeOf, streamId, requestScope.ownerDigest, RequestType.name)
      },
    })
    if (resume === undefined) return this

    // The companion routes document themselves, not the command's route:
    // their own summary, and an operationId of their own when it has one.
    // (OpenAPI fields: @fastify/swagger adds them to FastifySchema's type.)
    const { summary: _summary, description: _description, operationId, ...shared } = (schema ?? {}) as JsonSchema
    const companion = (suffix: string, summary: string, description: string): JsonSchema => ({
      ...shared,
      params: withStreamId(schema?.params),
      summary,
      description,
      ...(typeof operationId === 'string' ? { operationId: `${operationId}${suffix}` } : {}),
    })
    const { bodyLimit: _bodyLimit, preValidation: _preValidation, ...companionOptions } = routeOptions
    if (twoStep !== undefined) {
      this.route({
        ...companionOptions,
        onRequest: hooks(takeLastEventId, routeOptions.onRequest),
        method: 'GET',
        url: streamUrl,
        schema: {
          ...companion('Stream', `Stream a command accepted by ${route}`,
            `Runs the command that \`${route}\` accepted (202) and streams its frames; a second reader, or a reconnect with Last-Event-ID, follows the same run.`),
          headers: withProperties(schema?.headers, lastEventIdHeader),
          querystring: withProperties(undefined, lastEventIdQuery),
          response: { ...responses, ...notFoundResponse },
        },
        async handler (request: FastifyRequest, reply: FastifyReply) {
          const { streamId } = request.params as StreamParams
          const lastEventId = lastEventIdOf(request)
          const requestScope = await scopeOf(request)
          if (lastEventId !== undefined) return reconnect(reply, lastEventId, requestScope, streamId)
          // Refused (503) before it is taken: it stays for a claim elsewhere.
          if (!pending.has(streamId)) admission.admitClaim(reply)
          const claimed = await pending.take(streamId, requestScope, request.log, twoStep!.claimTimeoutMs)
          if (claimed !== undefined) {
            // Kept under the POST's scope: its owner's, which this request shares, or none.
            const ownerDigest = claimed.scope === scope ? undefined : requestScope.ownerDigest
            // The count moves from the POST (released when it was taken) to this run.
            if (ownerDigest !== undefined) open.acquireOwner(ownerDigest)
            let source: EventStreamSource<unknown>
            try {
              source = claimedSource(claimed, request)
            } catch (error) {
              // Its stream read as running since the take: now it is not.
              await Promise.resolve(open.store.delete(streamId)).catch(() => {})
              throw error
            }
            return startRun(reply, source, streamOptions, defaults, open, true, routeResume(pathOf(request), claimed.scope), streamId, ownerDigest, RequestType.name)
          }
          // A second reader of a claimed stream starts from its first frame.
          return resumeFrom(reply, streamId, -1, requestScope, true)
        },
      })
    }
    // A GET and a POST route on one url share their streams and this route.
    if (cancelRoutes.has(scope)) return this
    cancelRoutes.add(scope)
    this.route({
      ...companionOptions,
      method: 'DELETE',
      url: streamUrl,
      schema: {
        ...companion('Cancel', `Cancel a running stream of ${scope}`,
          'Aborts the handler of a running resumable stream, on whichever instance runs it; a connected client gets a FST_ERR_CQRS_STREAM_CANCELLED error frame.'),
        response: {
          204: { description: 'Cancelled: the handler is aborted; a connected client gets a FST_ERR_CQRS_STREAM_CANCELLED error frame.', type: 'null' },
          ...notFoundResponse,
        },
      },
      async handler (request: FastifyRequest, reply: FastifyReply) {
        const { streamId } = request.params as StreamParams
        const requestScope = await scopeOf(request)
        const running = open.resumable(streamId, requestScope)
        if (running !== undefined) running.terminate(new StreamCancelledError())
        else if (await pending.take(streamId, requestScope, request.log) === undefined) {
          const { store } = open
          const stored = await store.read(streamId, Number.MAX_SAFE_INTEGER)
          if (stored === undefined || !requestScope.admits(stored.scope, streamId)) throw new StreamNotFoundError(streamId)
          // Running on another instance: its owner aborts it.
          if (!stored.ended && isSharedStore(store)) await store.signal({ type: 'cancel', streamId })
        }
        return reply.code(204).send()
      },
    })
    return this
  }
}
