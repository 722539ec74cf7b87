import type { LimitFunction } from 'p-limit'
import type { BrokerMessage, MessageBroker } from '../brokers/message-broker.js'
import { tracedSend } from '../brokers/traced-send.js'
import {
  eventHandlerEndChannel, eventHandlerErrorChannel, eventHandlerStartChannel,
  type EventHandlerCallMessage, type EventHandlerErrorMessage,
} from '../diagnostics.js'
import { EventHandlerFailedError } from '../errors.js'
import type { EventHandler, EventHandlerClass } from '../handlers/event-handler.js'
import type { StreamContext } from '../handlers/stream-context.js'
import type { EventMap } from '../maps/event-map.js'
import type { Event } from '../messages/event.js'
import { messageClassOf } from '../messages/message.js'
import { NotificationEventMessage } from '../messages/notification-event.js'
import type { EventHandlerFailure, EventHandlerErrorInfo, MediatorLogger, OnEventHandlerError } from './event-handler-error.js'

/** The per-stream side of dispatching: its context and its event handler instances. */
export interface DispatchTarget {
  readonly context: StreamContext
  /** The stream's instance of `handlerClass`, built on first use. */
  handlerFor (handlerClass: EventHandlerClass): EventHandler
  /** Every event handler instance built for the stream so far. */
  handlers (): Iterable<EventHandler>
}

export interface EventDispatcherOptions {
  readonly eventMap: EventMap
  readonly messageBroker: MessageBroker
  /** Null for sequential handling. */
  readonly limit: LimitFunction | null
  readonly failure: EventHandlerFailure
  readonly onEventHandlerError: OnEventHandlerError | undefined
  readonly logger: MediatorLogger
}

/** A failure recorded while a round ran; thrown after the round in 'fail-stream' mode. */
type Outcome = InstanceType<typeof EventHandlerFailedError> | undefined

/**
 * Handles the events of one yield: domain events go to every handler bound
 * to their class, notification events to the broker. Follow-up events that
 * event handlers emit are handled round by round (breadth first). In
 * concurrent mode every task of a round runs under the mediator's p-limit
 * pool; the pool is only ever entered from here, never from inside a task,
 * so follow-ups cannot deadlock it.
 */
export class EventDispatcher {
  readonly #options: EventDispatcherOptions
  // Bound once so the pool is fed (fn, ...args) without a closure per task.
  readonly #runHandler = this.runHandler.bind(this)
  readonly #runSend = this.runSend.bind(this)

  constructor (options: EventDispatcherOptions) {
    this.#options = options
  }

  /** Handle `events` and all their follow-ups; resolves when every task has settled. */
  async dispatch (events: Event[], target: DispatchTarget): Promise<void> {
    let round: Event[] | undefined = events
    while (round !== undefined) {
      const failed = this.#options.limit === null
        ? await this.#sequential(round, target)
        : await this.#concurrent(round, target, this.#options.limit)
      if (failed !== undefined) throw failed
      round = collectFollowUps(target)
    }
  }

  async #sequential (events: Event[], target: DispatchTarget): Promise<Outcome> {
    const { eventMap } = this.#options
    for (const event of events) {
      if (event instanceof NotificationEventMessage) {
        const failed = await this.runSend(event, target)
        if (failed !== undefined) return failed
        continue
      }
      for (const handlerClass of eventMap.get(messageClassOf(event))) {
        const failed = await this.runHandler(handlerClass, event, target)
        if (failed !== undefined) return failed
      }
    }
    return undefined
  }

  async #concurrent (events: Event[], target: DispatchTarget, limit: LimitFunction): Promise<Outcome> {
    const { eventMap } = this.#options
    const tasks: Promise<Outcome>[] = []
    for (const event of events) {
      if (event instanceof NotificationEventMessage) {
        tasks.push(limit(this.#runSend, event, target))
        continue
      }
      for (const handlerClass of eventMap.get(messageClassOf(event))) {
        tasks.push(limit(this.#runHandler, handlerClass, event, target))
      }
    }
    // Every task settles before we look at failures: none is left running.
    const outcomes = await Promise.all(tasks)
    return outcomes.find((outcome) => outcome !== undefined)
  }

  /** Runs one handler on one event; never rejects. */
  private async runHandler (handlerClass: EventHandlerClass, event: Event, target: DispatchTarget): Promise<Outcome> {
    const call: EventHandlerCallMessage | undefined = eventHandlerStartChannel.hasSubscribers || eventHandlerEndChannel.hasSubscribers
      ? { streamId: target.context.streamId, eventName: messageClassOf(event).name, handlerName: handlerClass.name }
      : undefined
    if (call !== undefined) eventHandlerStartChannel.publish(call)
    try {
      await target.handlerFor(handlerClass).handle(event, target.context)
      if (call !== undefined) eventHandlerEndChannel.publish(call)
      return undefined
    } catch (error) {
      if (call !== undefined) {
        call.error = error
        eventHandlerEndChannel.publish(call)
      }
      return this.#failed(error, event, handlerClass.name, target)
    }
  }

  /** Sends one notification event to the broker; never rejects. */
  private async runSend (event: NotificationEventMessage, target: DispatchTarget): Promise<Outcome> {
    const message: BrokerMessage = { messageName: messageClassOf(event).name, messageId: event.eventId, topic: event.topic, payload: event.payload }
    try {
      await tracedSend(this.#options.messageBroker, message, target.context.streamId, target.context)
      return undefined
    } catch (error) {
      return this.#failed(error, event, 'messageBroker', target)
    }
  }

  async #failed (error: unknown, event: Event, handlerName: string, target: DispatchTarget): Promise<Outcome> {
    const { logger, onEventHandlerError, failure } = this.#options
    // A handler that gave up because the stream was aborted did its job.
    if (isAbortOf(error, target.context.signal)) return undefined
    const info: EventHandlerErrorInfo = { event, eventName: messageClassOf(event).name, handlerName, streamId: target.context.streamId }
    logger.error({ err: error, eventName: info.eventName, handlerName, streamId: info.streamId },
      `fastify-cqrs-stream: event handler ${handlerName} failed on ${info.eventName}`)
    if (eventHandlerErrorChannel.hasSubscribers) eventHandlerErrorChannel.publish({ ...info, error } satisfies EventHandlerErrorMessage)
    if (onEventHandlerError !== undefined) {
      try {
        await onEventHandlerError(error, info)
      } catch (hookError) {
        logger.error({ err: hookError, handlerName }, 'fastify-cqrs-stream: onEventHandlerError threw')
      }
    }
    if (failure === 'isolate') return undefined
    return new EventHandlerFailedError(handlerName, info.eventName, { cause: error })
  }
}

function collectFollowUps (target: DispatchTarget): Event[] | undefined {
  let next: Event[] | undefined
  for (const handler of target.handlers()) {
    const emitted = handler.takeEvents()
    if (emitted === undefined) continue
    if (next === undefined) next = emitted
    else for (const event of emitted) next.push(event)
  }
  return next
}

function isAbortOf (error: unknown, signal: AbortSignal): boolean {
  return signal.aborted && (error === signal.reason || (error as { name?: unknown } | null)?.name === 'AbortError')
}
