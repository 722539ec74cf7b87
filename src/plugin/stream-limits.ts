import { InvalidOptionError } from '../errors.js'

/**
 * What one instance takes before it refuses new streams. Every figure is a
 * positive integer or `Infinity`. A refused request never runs its command.
 * @example
 * await app.register(fastifyCqrsStream, {
 *   requests,
 *   streamOwner: (request) => request.session.get('userId'),
 *   limits: { maxOpenStreams: 5_000, maxStreamsPerOwner: 10 },
 * })
 */
export interface StreamLimits {
  /**
   * Streams running on this instance (including resumable ones whose client
   * is away, and two-step commands posted and not yet claimed). Past it a
   * new stream gets 503 `FST_ERR_CQRS_STREAM_OVERLOADED` with `Retry-After`.
   * Reconnects to running streams are always served.
   * @default 10000
   */
  readonly maxOpenStreams?: number
  /**
   * Streams (running or posted) of one owner on this instance; needs
   * `streamOwner`. Past it: 429 `FST_ERR_CQRS_STREAM_TOO_MANY_STREAMS` with `Retry-After`.
   * @default 20
   */
  readonly maxStreamsPerOwner?: number
  /**
   * Two-step commands posted and not yet claimed by their GET. Past it: 503
   * `FST_ERR_CQRS_STREAM_OVERLOADED` with `Retry-After`.
   * @default 1000
   */
  readonly maxPendingStreams?: number
  /**
   * Characters (`string.length` of the frames) one resumable stream keeps
   * for its reconnects; older frames are dropped past it, as past
   * `resume.maxBufferedFrames`. A stream whose client is away is aborted,
   * as when its window runs out, once it has sent more than this since the
   * client left: the client could not get every frame it missed.
   * @default 262144 (256 KiB)
   */
  readonly maxBufferedBytes?: number
  /**
   * The `Retry-After` of a 503 or 429, in seconds.
   * @default 5
   */
  readonly retryAfterSeconds?: number
}

export const LIMIT_DEFAULTS: Required<StreamLimits> = {
  maxOpenStreams: 10_000,
  maxStreamsPerOwner: 20,
  maxPendingStreams: 1_000,
  maxBufferedBytes: 256 * 1024,
  retryAfterSeconds: 5,
}

/** `limits` with the defaults filled in; throws `FST_ERR_CQRS_STREAM_INVALID_OPTION` naming a bad figure. */
export function resolveLimits (limits: StreamLimits | undefined): Required<StreamLimits> {
  if (limits === undefined) return LIMIT_DEFAULTS
  if (typeof limits !== 'object' || limits === null) throw new InvalidOptionError('limits', 'must be an object')
  const resolved = { ...LIMIT_DEFAULTS, ...limits }
  for (const key of Object.keys(LIMIT_DEFAULTS) as Array<keyof StreamLimits>) {
    const value = resolved[key]
    if (!(value === Infinity || (Number.isInteger(value) && value >= 1))) {
      throw new InvalidOptionError(`limits.${key}`, `must be a positive integer or Infinity, got ${String(value)}`)
    }
  }
  return resolved
}
