import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { streamRefusedChannel, type StreamRefusedMessage } from '../diagnostics.js'
import { InvalidOptionError } from '../errors.js'

/**
 * Who a stream belongs to, from the request that starts it and from every
 * later request about it (a reconnect, a two-step claim, a cancel): a
 * user id or session id, never shown to anyone. `undefined`: no owner, the
 * stream id alone gives access (as without the option).
 * @example
 * // A session cookie, read by @fastify/secure-session or @fastify/session:
 * streamOwner: (request) => request.session.get('userId')
 */
export type StreamOwner = (request: FastifyRequest) => string | undefined | Promise<string | undefined>

// Between a route's scope and an owner's hash: a url never holds it.
const SEPARATOR = '\n'

/** The owner as the store keeps it: a SHA-256 digest, never the raw value. */
function ownerDigest (owner: string): string {
  return createHash('sha256').update('fastify-cqrs-stream:owner:').update(owner).digest('base64url')
}

/**
 * The scope a request sees streams under: its route's, and its owner's.
 * A stream started by a request with an owner is kept under
 * `<route>\n<digest>`; one started without, under `<route>`.
 */
export class RequestScope {
  readonly route: string
  readonly ownerDigest: string | undefined
  readonly #request: FastifyRequest
  // A request may look in several places (here, then the store): reported once.
  #reported: string | undefined

  constructor (request: FastifyRequest, route: string, owner: string | undefined) {
    this.#request = request
    this.route = route
    this.ownerDigest = owner === undefined ? undefined : ownerDigest(owner)
  }

  /** What a stream started by this request is kept under. */
  get key (): string {
    return this.ownerDigest === undefined ? this.route : `${this.route}${SEPARATOR}${this.ownerDigest}`
  }

  /**
   * True when this request may see the stream kept under `key`: one of its
   * route started with no owner, or by the same owner (compared in constant
   * time). A stream of the route that belongs to someone else is refused:
   * logged and published, and answered as an unknown stream by the caller.
   */
  admits (key: string, streamId: string): boolean {
    if (key === this.route) return true
    const route = this.route + SEPARATOR
    if (!key.startsWith(route)) return false
    const theirs = Buffer.from(key.slice(route.length))
    const ours = Buffer.from(this.ownerDigest ?? '')
    if (theirs.length === ours.length && timingSafeEqual(theirs, ours)) return true
    this.#refused(streamId)
    return false
  }

  #refused (streamId: string): void {
    if (this.#reported === streamId) return
    this.#reported = streamId
    const request = this.#request
    request.log.warn({ streamId, route: this.route, owned: this.ownerDigest !== undefined },
      'fastify-cqrs-stream: a request about a stream of another owner was answered as for an unknown stream')
    if (streamRefusedChannel.hasSubscribers) {
      const message: StreamRefusedMessage = { streamId, route: this.route, request }
      streamRefusedChannel.publish(message)
    }
  }
}

export function validateStreamOwner (streamOwner: unknown, where: string): StreamOwner | undefined {
  if (streamOwner !== undefined && typeof streamOwner !== 'function') throw new InvalidOptionError(where, 'must be a function (request) => string | undefined')
  return streamOwner as StreamOwner | undefined
}

/**
 * The scope of `request` under `route`. The owner is asked for on every
 * request, so a session that expired cannot resume its streams. A value
 * that is neither a string nor undefined is a bug of `streamOwner`, not
 * "no owner": it fails the request.
 */
export async function requestScope (request: FastifyRequest, route: string, streamOwner: StreamOwner | undefined): Promise<RequestScope> {
  if (streamOwner === undefined) return new RequestScope(request, route, undefined)
  const owner = await streamOwner(request)
  if (owner !== undefined && typeof owner !== 'string') {
    throw new InvalidOptionError('streamOwner', `must return a string or undefined, got ${typeof owner}`)
  }
  return new RequestScope(request, route, owner)
}
