import type { StreamContext } from '../handlers/stream-context.js'

// context.signal is an own enumerable getter, as on an object literal (so
// `{ ...context }` and Object.keys() see it), but one function shared by
// every context: V8 builds a literal with a getter on its slow path, about
// 1 µs per stream.
const signalProperty: PropertyDescriptor = {
  get (this: RunContext): AbortSignal { return RunContext.signalOf(this) },
  enumerable: true,
  configurable: true,
}

/**
 * The context of one stream, as a handler or a source function gets it.
 * Its AbortController is made when someone reads `signal`: a handler that
 * never looks at it costs no controller (about 5 µs and 0.5 KB per stream).
 * A signal first read after the abort is already aborted.
 */
export class RunContext implements StreamContext {
  readonly streamId: string
  declare readonly signal: AbortSignal
  #controller: AbortController | undefined
  #reason: unknown

  constructor (streamId: string) {
    this.streamId = streamId
    Object.defineProperty(this, 'signal', signalProperty)
  }

  /** @internal `context.signal`, made on first use (static: not a member handlers see). */
  static signalOf (context: RunContext): AbortSignal {
    if (context.#controller === undefined) {
      context.#controller = new AbortController()
      if (context.#reason !== undefined) context.#controller.abort(context.#reason)
    }
    return context.#controller.signal
  }

  /** @internal aborts `context.signal`; the first reason wins. */
  static abort (context: RunContext, reason: unknown): void {
    if (context.#reason !== undefined) return
    context.#reason = reason
    context.#controller?.abort(reason)
  }
}
