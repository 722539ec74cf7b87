import { InvalidOptionError } from '../errors.js'

/**
 * Makes a stream survive a dropped connection: it keeps running, its recent
 * frames kept, and a client reconnecting with `Last-Event-ID` gets exactly
 * the frames it missed, then the live ones.
 * @example
 * app.streamRoute({ method: 'GET', url: '/orders/process', request: ProcessOrdersCommand, resume: { windowMs: 30_000 } })
 */
export interface ResumeSettings {
  /**
   * How long a stream whose client left keeps running while waiting for a
   * reconnect before its handler is aborted; also how long an ended stream's
   * frames are kept for a late reconnect.
   * @default 30000
   */
  windowMs?: number
  /**
   * Frames kept per stream (the oldest are dropped). While the client is
   * away, this many new frames abort the handler: more could not all be
   * replayed. Memory per stream is at most this many encoded frames.
   * @default 1000
   */
  maxBufferedFrames?: number
}

export const RESUME_DEFAULTS: Required<ResumeSettings> = { windowMs: 30_000, maxBufferedFrames: 1000 }

/** Throws `FST_ERR_CQRS_STREAM_INVALID_OPTION` naming the first bad setting; returns them with defaults. */
export function resolveResumeSettings (settings: ResumeSettings | true, name = 'resume'): Required<ResumeSettings> {
  if (settings === true) return RESUME_DEFAULTS
  if (typeof settings !== 'object' || settings === null) throw new InvalidOptionError(name, 'must be true or an object')
  const resolved = { ...RESUME_DEFAULTS, ...settings }
  for (const key of ['windowMs', 'maxBufferedFrames'] as const) {
    const value = resolved[key]
    if (!Number.isInteger(value) || value < 1) {
      throw new InvalidOptionError(`${name}.${key}`, `must be a positive integer, got ${String(value)}`)
    }
  }
  return resolved
}
