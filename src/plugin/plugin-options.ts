import { InvalidOptionError } from '../errors.js'
import { validateMediatorOptions, type StreamingMediatorOptions } from '../mediator/mediator-options.js'
import { isSharedStore, type SharedStreamStore, type StreamStore } from '../resume/stream-store.js'
import { resolveLimits, type StreamLimits } from './stream-limits.js'
import { validateStreamOwner, type StreamOwner } from './stream-owner.js'

/** SSE settings shared by the plugin options and `reply.eventStream()`. */
export interface EventStreamSettings {
  /**
   * Ms of silence after which a `:` comment line is sent, so proxies and load
   * balancers keep an idle stream open. 0 turns heartbeats off.
   * @default 15000
   */
  heartbeatMs?: number
  /**
   * Add `event: start|progress|complete|error` lines. Browsers then deliver
   * frames to `addEventListener('progress', …)` instead of `onmessage`.
   * @default false
   */
  namedEvents?: boolean
  /**
   * A `retry:` reconnection hint (ms) in the start frame.
   * @default none; 1000 on resumable streams
   */
  retryMs?: number
}

/**
 * Options of the fastify-cqrs-stream plugin: the mediator's, plus SSE and
 * shutdown settings.
 * @example
 * await app.register(fastifyCqrsStream, {
 *   requests: (map) => map.bind(ProcessOrdersCommand, ProcessOrdersHandler),
 *   events: (map) => map.bind(OrderProcessedEvent, OrderProcessedHandler),
 *   messageBroker: new InMemoryMessageBroker(),
 * })
 */
export interface FastifyCqrsStreamOptions extends StreamingMediatorOptions, EventStreamSettings {
  /**
   * On `app.close()`, how long to wait for aborted handlers and their event
   * handlers to finish before closing anyway.
   * @default 10000
   */
  closeTimeoutMs?: number
  /**
   * Where resumable streams (`streamRoute`'s `resume` and `twoStep`) keep
   * their recent frames for reconnecting clients.
   * @default new InMemoryStreamStore()
   */
  streamStore?: StreamStore
  /**
   * At `app.ready()`, build every bound handler and event handler class
   * once in a throwaway scope, so a registration missing from the container
   * fails the boot (`FST_ERR_CQRS_STREAM_MISSING_DEPENDENCY`, naming the
   * class and the name) instead of a client's first stream. The throwaway
   * scope's `streamId` is `'fastify-cqrs-stream:verify'`, and its
   * `fastifyRequest` is undefined; a constructor that throws anything but a
   * resolution error is left for the first stream to report. Turn it off
   * when a constructor does work that must not happen at boot.
   * @default true
   */
  verifyHandlers?: boolean
  /**
   * Who a stream belongs to. When it returns a string for the request that
   * starts a stream, every later request about that stream (a reconnect, a
   * two-step claim, a cancel) is served only if it returns the same string,
   * and is answered as for an unknown stream otherwise. Asked on every
   * request, so a session that expired cannot resume. `undefined`: the
   * stream id alone gives access. Overridable per route. See docs/security.md.
   * @example
   * streamOwner: (request) => request.session.get('userId')
   */
  streamOwner?: StreamOwner
  /** What one instance takes before it refuses new streams: see {@link StreamLimits}. */
  limits?: StreamLimits
}

function nonNegativeInteger (name: string, value: unknown): void {
  if (value !== undefined && !(Number.isInteger(value) && (value as number) >= 0)) {
    throw new InvalidOptionError(name, `must be a non-negative integer (ms), got ${String(value)}`)
  }
}

/**
 * A route option that is `true` (the defaults) or an object of positive
 * integers (`resume`, `twoStep`): returns it with the defaults filled in,
 * or throws `FST_ERR_CQRS_STREAM_INVALID_OPTION` naming the bad setting.
 */
export function resolvePositiveSettings<T extends Record<string, number>> (name: string, settings: Partial<T> | true, defaults: T): T {
  if (settings === true) return defaults
  if (typeof settings !== 'object' || settings === null) throw new InvalidOptionError(name, 'must be true or an object')
  const resolved = { ...defaults, ...settings }
  for (const key of Object.keys(defaults)) {
    const value = resolved[key]
    if (!Number.isInteger(value) || value! < 1) {
      throw new InvalidOptionError(`${name}.${key}`, `must be a positive integer, got ${String(value)}`)
    }
  }
  return resolved
}

/** Throws `FST_ERR_CQRS_STREAM_INVALID_OPTION` naming the first bad SSE setting. */
export function validateStreamSettings (settings: EventStreamSettings): void {
  nonNegativeInteger('heartbeatMs', settings.heartbeatMs)
  nonNegativeInteger('retryMs', settings.retryMs)
  if (settings.namedEvents !== undefined && typeof settings.namedEvents !== 'boolean') {
    throw new InvalidOptionError('namedEvents', 'must be a boolean')
  }
}

/** Throws `FST_ERR_CQRS_STREAM_INVALID_OPTION` naming the first bad option. */
export function validatePluginOptions (options: FastifyCqrsStreamOptions): void {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'must be an object')
  validateMediatorOptions(options)
  validateStreamSettings(options)
  nonNegativeInteger('closeTimeoutMs', options.closeTimeoutMs)
  if (options.verifyHandlers !== undefined && typeof options.verifyHandlers !== 'boolean') {
    throw new InvalidOptionError('verifyHandlers', 'must be a boolean')
  }
  validateStreamOwner(options.streamOwner, 'streamOwner')
  resolveLimits(options.limits)
  const store = options.streamStore
  if (store !== undefined && !(['open', 'append', 'read', 'end', 'delete'] as const).every((name) => typeof store?.[name] === 'function')) {
    throw new InvalidOptionError('streamStore', 'must implement StreamStore: open, append, read, end and delete')
  }
  // A store written for 0.1's SharedStreamStore would silently become an unshared one.
  const shared = store as Partial<SharedStreamStore> | undefined
  if (typeof shared?.follow === 'function' && !isSharedStore(store!)) {
    throw new InvalidOptionError('streamStore', 'shares streams (it has follow) but lacks putCommand and takeCommand, which two-step commands across instances need: implement them (see docs/resume.md)')
  }
}
