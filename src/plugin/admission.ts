import type { FastifyReply } from 'fastify'
import { OverloadedError, TooManyStreamsError } from '../errors.js'
import type { OpenStreams } from './open-streams.js'
import type { PendingStreams } from './pending-streams.js'
import type { StreamLimits } from './stream-limits.js'

/**
 * Decides whether a new stream (or a two-step command) may start here, by
 * the plugin's `limits`, before its command runs; counts it for its owner
 * when it may. The counts are released by whatever ends the stream: the
 * run's end (OpenStreams.remove) or the pending command's (PendingStreams).
 */
export class Admission {
  readonly #limits: Required<StreamLimits>
  readonly #open: OpenStreams
  readonly #pending: PendingStreams

  constructor (limits: Required<StreamLimits>, open: OpenStreams, pending: PendingStreams) {
    this.#limits = limits
    this.#open = open
    this.#pending = pending
  }

  get maxBufferedBytes (): number { return this.#limits.maxBufferedBytes }

  /** Throws 503 or 429 (with `Retry-After` on `reply`) unless a stream of `ownerDigest` may start; counts it when it may. */
  admit (reply: FastifyReply, ownerDigest: string | undefined, twoStep = false): void {
    const limits = this.#limits
    if (this.#open.size + this.#pending.size >= limits.maxOpenStreams) this.#refuse(reply, new OverloadedError('streams'))
    if (twoStep && this.#pending.size >= limits.maxPendingStreams) this.#refuse(reply, new OverloadedError('two-step commands waiting for their GET'))
    if (ownerDigest === undefined) return
    if (this.#open.ownerCount(ownerDigest) >= limits.maxStreamsPerOwner) this.#refuse(reply, new TooManyStreamsError(limits.maxStreamsPerOwner))
    this.#open.acquireOwner(ownerDigest)
  }

  /**
   * Throws 503 unless a two-step command posted to another instance may
   * run here (one posted here is counted already).
   */
  admitClaim (reply: FastifyReply): void {
    if (this.#open.size + this.#pending.size >= this.#limits.maxOpenStreams) this.#refuse(reply, new OverloadedError('streams'))
  }

  #refuse (reply: FastifyReply, error: Error): never {
    reply.header('retry-after', String(this.#limits.retryAfterSeconds))
    throw error
  }
}
