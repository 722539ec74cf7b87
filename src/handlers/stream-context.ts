/**
 * What a streaming handler, a middleware and an event handler get besides
 * their message.
 */
export interface StreamContext {
  /**
   * Aborted when the stream ends early: the client left, the consumer
   * stopped, the caller's signal fired, or the server is closing. Pass it to
   * every awaited call so the handler stops promptly.
   * @example
   * await fetch(url, { signal: context.signal })
   */
  readonly signal: AbortSignal
  /** Unique id of this stream run; the SSE layer uses it in frame ids. */
  readonly streamId: string
}
