import { randomUUID } from 'node:crypto'
import type { AwilixContainer } from 'awilix'
import { streamEndChannel, streamStartChannel, type StreamEndMessage, type StreamStartMessage } from '../diagnostics.js'
import { ShutdownError, StreamAbortedError, StreamAlreadyConsumedError } from '../errors.js'
import type { DispatchTarget, EventDispatcher } from '../events/event-dispatcher.js'
import type { MediatorLogger } from '../events/event-handler-error.js'
import type { EventHandler, EventHandlerClass } from '../handlers/event-handler.js'
import type { StreamContext } from '../handlers/stream-context.js'
import { giveHandlerScope } from '../handlers/handler-scope.js'
import type { StreamingRequestHandler } from '../handlers/streaming-request-handler.js'
import type { RequestMap } from '../maps/request-map.js'
import { messageClassOf } from '../messages/message.js'
import type { Event } from '../messages/event.js'
import type { RequestMessage } from '../messages/request.js'
import { handlerRun } from './handler-run.js'
import { RunContext } from '../run/run-context.js'
import { StreamScope } from './stream-scope.js'
import { terminateSource, type Terminable } from '../run/terminable.js'
import type { StreamMiddleware } from './stream-middleware.js'

/** Options of one `mediator.stream()` call. */
export interface StreamOptions {
  /** Aborting it ends the stream: the handler's `context.signal` aborts and the next pull rejects. */
  readonly signal?: AbortSignal | undefined
  /**
   * Values registered (as `asValue`) in the stream's own scope, beside
   * `signal` and `streamId`; the HTTP layer adds `fastifyRequest`.
   */
  readonly values?: Readonly<Record<string, unknown>> | undefined
  /** The stream's id; a random UUID when not given. */
  readonly streamId?: string | undefined
}

/** What a stream needs from the mediator that made it. */
export interface MediatorCore {
  readonly container: AwilixContainer
  readonly requestMap: RequestMap
  readonly dispatcher: EventDispatcher
  readonly middlewares: readonly StreamMiddleware[]
  readonly logger: MediatorLogger
  readonly open: Set<MediatorStream<unknown>>
  /** Set by mediator.close(): a stream first pulled afterwards fails with SHUTDOWN. */
  closed: boolean
}

const DONE: IteratorResult<never> = Object.freeze({ done: true, value: undefined })
const NO_HANDLERS: readonly EventHandler[] = []
// The abort reason of a run that ended on its own: made once, as an error
// captures a stack (several µs under Fastify's deep call chains).
const ENDED = Object.freeze(new StreamAbortedError())
const noop = (): void => {}

/**
 * One run of a command: an async iterator of its results. Nothing runs until
 * the first `next()`. `return()` (a consumer's `break`) aborts the handler's
 * signal at once, even while an item is being produced, then returns the
 * handler's generator, waits for its event handlers and disposes the scope.
 */
export class MediatorStream<TResult> implements AsyncIterableIterator<TResult>, DispatchTarget, Terminable {
  readonly streamId: string
  readonly context: StreamContext
  readonly #core: MediatorCore
  readonly #request: RequestMessage
  readonly #values: Readonly<Record<string, unknown>> | undefined
  readonly #external: AbortSignal | undefined
  #onExternalAbort: (() => void) | undefined
  #state: 'idle' | 'running' | 'ended' = 'idle'
  #iterated = false
  // Without middlewares: the handler, whose own iterator is #inner.
  #handler: StreamingRequestHandler | undefined
  // Set when that iterator finished or threw: there is nothing to return.
  #handlerClosed = false
  // What next() pulls: the middlewares' iterator, or the handler's.
  #inner: AsyncIterator<unknown> | undefined
  #pending: Promise<IteratorResult<unknown>> | undefined
  #scope: StreamScope | undefined
  #eventHandlers: Map<EventHandlerClass, EventHandler> | undefined
  #failure: unknown
  #error: unknown
  #stopping: Promise<void> | undefined
  #ended: Promise<void> | undefined

  constructor (core: MediatorCore, request: RequestMessage, options: StreamOptions | undefined) {
    this.#core = core
    this.#request = request
    this.#values = options?.values
    this.streamId = options?.streamId ?? randomUUID()
    this.context = new RunContext(this.streamId)
    const external = options?.signal
    if (external !== undefined) {
      if (external.aborted) {
        this.#failure = abortReason(external)
        this.#state = 'ended'
        this.#ended = Promise.resolve()
      } else {
        this.#external = external
        this.#onExternalAbort = () => { this.terminate(abortReason(external)) }
        external.addEventListener('abort', this.#onExternalAbort, { once: true })
      }
    }
  }

  /** The command's class name, e.g. `'ProcessOrdersCommand'` (traces name a stream by it). */
  get commandName (): string {
    return messageClassOf(this.#request).name
  }

  /** Aborts the handler's signal; the first reason wins. */
  #abort (reason: unknown): void {
    RunContext.abort(this.context as RunContext, reason)
  }

  [Symbol.asyncIterator] (): this {
    if (this.#iterated) throw new StreamAlreadyConsumedError()
    this.#iterated = true
    return this
  }

  next (): Promise<IteratorResult<TResult>> {
    // Once return() or terminate() is stopping the run, never pull the handler again.
    if (this.#stopping !== undefined || this.#state === 'ended') return this.#afterRun()
    const pull = this.#pull()
    // What return() and terminate() wait for before they stop the handler.
    this.#pending = pull
    return pull
  }

  async #afterRun (): Promise<IteratorResult<TResult>> {
    await this.#stopping
    if (this.#failure !== undefined) throw this.#failure
    return DONE
  }

  async #pull (): Promise<IteratorResult<TResult>> {
    let result: IteratorResult<unknown>
    try {
      if (this.#state === 'idle') this.#start()
      result = await this.#inner!.next()
      const handler = this.#handler
      if (handler !== undefined) {
        // Without middlewares #inner is the handler's own iterator and
        // handlerRun's steps are done here: one async frame per pull, not three.
        if (result.done === true) this.#handlerClosed = true
        const events = handler.takeEvents()
        if (events !== undefined) await this.#dispatchItemEvents(events)
      }
    } catch (error) {
      // A handler that threw is closed, and one whose events failed was returned.
      if (this.#handler !== undefined) this.#handlerClosed = true
      this.#error = error
      await this.#end()
      throw this.#failure ?? error
    }
    if (result.done === true) {
      await this.#end()
      if (this.#failure !== undefined) throw this.#failure
      return DONE
    }
    return result as IteratorResult<TResult>
  }

  async return (): Promise<IteratorResult<TResult>> {
    if (this.#state === 'idle') this.#endUnstarted()
    if (this.#state === 'ended') {
      await this.#ended
      return DONE
    }
    this.#abort(new StreamAbortedError())
    this.#stopping ??= this.#settle()
    await this.#stopping
    return DONE
  }

  /**
   * Ends the stream from outside (caller's signal, server shutdown): the
   * handler is aborted and every later `next()` rejects with `reason`.
   */
  terminate (reason: unknown): Promise<void> {
    // A run that already ended (only its scope is being disposed) keeps its outcome.
    if (this.#ended !== undefined) return this.#ended
    this.#failure ??= reason
    if (this.#state === 'idle') return this.#endUnstarted()
    this.#abort(reason)
    this.#stopping ??= this.#settle()
    return this.#stopping
  }

  [terminateSource] (reason: unknown): Promise<void> {
    return this.terminate(reason)
  }

  handlerFor (handlerClass: EventHandlerClass): EventHandler {
    // Created on the first event: most streams of most apps emit none.
    const handlers = this.#eventHandlers ??= new Map()
    let handler = handlers.get(handlerClass)
    if (handler === undefined) {
      handler = this.#scope!.instantiate(handlerClass as unknown as new () => EventHandler)
      handlers.set(handlerClass, handler)
    }
    return handler
  }

  handlers (): Iterable<EventHandler> { return this.#eventHandlers?.values() ?? NO_HANDLERS }

  #start (): void {
    if (this.#core.closed) {
      this.#failure = new ShutdownError()
      throw this.#failure
    }
    this.#state = 'running'
    this.#core.open.add(this as MediatorStream<unknown>)
    if (streamStartChannel.hasSubscribers) {
      streamStartChannel.publish({ streamId: this.streamId, request: this.#request } satisfies StreamStartMessage)
    }
    const { container, requestMap, middlewares } = this.#core
    const handlerClass = requestMap.require(messageClassOf(this.#request))
    const context = this.context
    const scope = new StreamScope(container, context, this.#values)
    this.#scope = scope
    const request = this.#request
    if (middlewares.length === 0) {
      const handler = giveHandlerScope(scope.instantiate(handlerClass as unknown as new () => StreamingRequestHandler), scope)
      this.#handler = handler
      this.#inner = handler.handle(request, context)[Symbol.asyncIterator]()
      return
    }
    // Built only when the innermost `next()` is called: a middleware that
    // short-circuits never constructs the handler or its dependencies.
    let source = (): AsyncIterable<unknown> => handlerRun(
      giveHandlerScope(scope.instantiate(handlerClass as unknown as new () => StreamingRequestHandler), scope), request, context, this)
    for (let i = middlewares.length - 1; i >= 0; i--) {
      const middleware = middlewares[i]!
      const next = source
      source = () => middleware(request, next, context)
    }
    this.#inner = source()[Symbol.asyncIterator]()
  }

  /** The events the handler emitted while producing an item, dispatched before the item is handed on. */
  async #dispatchItemEvents (events: Event[]): Promise<void> {
    try {
      await this.dispatchEvents(events)
    } catch (error) {
      // A handler suspended at its yield is returned before the stream ends.
      if (!this.#handlerClosed) await this.#inner!.return?.()
      throw error
    }
  }

  /** @internal the way to the dispatcher, for the events of one item. */
  dispatchEvents (events: Event[]): Promise<void> {
    return this.#core.dispatcher.dispatch(events, this)
  }

  /** Waits for an item in production, returns the inner iterator, cleans up. */
  async #settle (): Promise<void> {
    if (this.#pending !== undefined) await this.#pending.then(noop, noop)
    try {
      if (!this.#handlerClosed) await this.#inner?.return?.()
    } catch (error) {
      this.#core.logger.warn({ err: error, streamId: this.streamId }, 'fastify-cqrs-stream: a handler threw while being stopped')
    }
    await this.#end()
  }

  #end (): Promise<void> {
    this.#ended ??= this.#cleanup()
    return this.#ended
  }

  async #cleanup (): Promise<void> {
    this.#state = 'ended'
    // Events left undelivered are dropped (handlerRun does it for middlewares).
    this.#handler?.clearEvents()
    this.#detach()
    this.#abort(ENDED)
    const scope = this.#scope
    this.#scope = undefined
    try {
      await scope?.close()
    } catch (error) {
      this.#core.logger.error({ err: error, streamId: this.streamId }, 'fastify-cqrs-stream: disposing the stream scope failed')
    }
    this.#core.open.delete(this as MediatorStream<unknown>)
    if (streamEndChannel.hasSubscribers) {
      streamEndChannel.publish({ streamId: this.streamId, request: this.#request, error: this.#failure ?? this.#error } satisfies StreamEndMessage)
    }
  }

  /** Ends a stream that never ran: there is nothing to stop or dispose. */
  #endUnstarted (): Promise<void> {
    this.#state = 'ended'
    this.#ended = Promise.resolve()
    this.#detach()
    return this.#ended
  }

  #detach (): void {
    if (this.#onExternalAbort !== undefined) this.#external!.removeEventListener('abort', this.#onExternalAbort)
  }
}

function abortReason (signal: AbortSignal): unknown {
  const reason: unknown = signal.reason
  if (reason instanceof Error && typeof (reason as { code?: unknown }).code === 'string') return reason
  return new StreamAbortedError({ cause: reason })
}
