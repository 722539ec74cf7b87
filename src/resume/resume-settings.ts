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
