import { setTimeout as sleep } from 'node:timers/promises'
import type { BrokerMessage, MessageBroker } from '../brokers/message-broker.js'
import { BrokerUnavailableError } from '../errors.js'
import { resolveAmqpOptions, type AmqpMessageBrokerOptions, type AmqpSettings } from './amqp-options.js'
import { AmqpSession } from './amqp-session.js'
import { PendingSend } from './pending-send.js'
import { reconnectDelay } from './reconnect-delay.js'

const noop = (): void => {}

/**
 * Publishes notification events to a RabbitMQ topic exchange with publisher
 * confirms: `send()` resolves once the broker has taken the message. The
 * routing key is the event's topic; the body is the payload as JSON; the
 * event id, class name and content type travel as the `messageId`, `type`
 * and `contentType` properties; the message's `headers` (the W3C trace
 * context while tracing) as AMQP headers; messages are persistent.
 *
 * A lost connection is reopened with exponential backoff. Sends made
 * meanwhile wait for it, and messages that were published but not confirmed
 * when it dropped are published again (same `messageId`): delivery is
 * at-least-once. Every send settles within `sendTimeoutMs`.
 * @example
 * const broker = await AmqpMessageBroker.connect({ url: 'amqp://localhost', exchange: 'orders.events', logger: app.log })
 * await app.register(fastifyCqrsStream, { messageBroker: broker, requests })
 * // onClose hooks run after the plugin has ended its streams
 * app.addHook('onClose', () => broker.close())
 */
export class AmqpMessageBroker implements MessageBroker {
  readonly #settings: AmqpSettings
  #session: AmqpSession | undefined
  /** Sends waiting for a connection, in order. */
  #waiting = new Set<PendingSend>()
  #unsettled = 0
  #closed = false
  #closing: Promise<void> | undefined
  #drained: () => void = noop
  #recovering: Promise<void> | undefined
  readonly #stop = new AbortController()
  readonly #settled = (): void => {
    if (--this.#unsettled === 0) this.#drained()
  }

  readonly #expired = (send: PendingSend): Error => {
    const { address, sendTimeoutMs } = this.#settings
    return send.published
      ? new BrokerUnavailableError(address, `no confirm within sendTimeoutMs (${sendTimeoutMs} ms); the message may still be delivered`)
      : new BrokerUnavailableError(address, `no connection within sendTimeoutMs (${sendTimeoutMs} ms); the message was not published`)
  }

  private constructor (settings: AmqpSettings, session: AmqpSession) {
    this.#settings = settings
    this.#adopt(session)
  }

  /**
   * Connects to the broker and asserts the exchange. Rejects with
   * `FST_ERR_CQRS_STREAM_INVALID_OPTION` on a bad option, and with
   * `FST_ERR_CQRS_STREAM_BROKER_UNAVAILABLE` when the broker cannot be
   * reached within `connectTimeoutMs` (no retry at boot).
   * @example
   * const broker = await AmqpMessageBroker.connect({ url: process.env.AMQP_URL, exchange: 'orders.events' })
   */
  static async connect (options: AmqpMessageBrokerOptions): Promise<AmqpMessageBroker> {
    const settings = resolveAmqpOptions(options)
    return new AmqpMessageBroker(settings, await AmqpSession.open(settings))
  }

  /** For traces: `messaging.system`. */
  readonly messagingSystem = 'rabbitmq'

  /** The exchange messages are published to. */
  get exchange (): string { return this.#settings.exchange }

  /** Whether a connection is open now (false while reconnecting and after `close()`). */
  get connected (): boolean { return this.#session !== undefined }

  /**
   * Publishes `message` and resolves when the broker confirmed it. Rejects
   * with `FST_ERR_CQRS_STREAM_BROKER_REJECTED` on a nack or a message that
   * cannot be encoded, and with `FST_ERR_CQRS_STREAM_BROKER_UNAVAILABLE`
   * after `sendTimeoutMs` or once `close()` was called.
   */
  send (message: BrokerMessage): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new BrokerUnavailableError(this.#settings.address, 'the AmqpMessageBroker was closed'))
    }
    this.#unsettled++
    const send = new PendingSend(message, this.#settings.sendTimeoutMs, this.#expired, this.#settled)
    if (this.#session === undefined) send.moveTo(this.#waiting)
    else this.#session.publish(send)
    return send.promise
  }

  /**
   * Refuses new sends, waits until every pending one has settled (confirmed,
   * or failed at its `sendTimeoutMs`), then closes the channel and the
   * connection. Safe to call more than once.
   */
  close (): Promise<void> {
    this.#closing ??= this.#shutdown()
    return this.#closing
  }

  async #shutdown (): Promise<void> {
    this.#closed = true
    // Reconnecting goes on meanwhile, so waiting sends can still be delivered.
    if (this.#unsettled > 0) await new Promise<void>((resolve) => { this.#drained = resolve })
    this.#stop.abort()
    await this.#recovering
    await this.#session?.close()
    this.#session = undefined
  }

  #adopt (session: AmqpSession): void {
    this.#session = session
    session.lost.then(() => this.#onLost(session))
    const waiting = this.#waiting
    this.#waiting = new Set()
    for (const send of waiting) session.publish(send)
  }

  #onLost (session: AmqpSession): void {
    this.#session = undefined
    const { logger, address, exchange } = this.#settings
    if (session.connectionOpen) {
      logger.error({ err: session.reason, exchange }, 'fastify-cqrs-stream: the AMQP broker closed the channel; reconnecting')
    } else {
      logger.warn({ err: session.reason, broker: address }, 'fastify-cqrs-stream: lost the AMQP connection; reconnecting')
    }
    // The messages published but unconfirmed, in their order, wait for the
    // next connection: the broker may have them already (at-least-once), or
    // not. (Nothing else waits while a connection is open.)
    this.#waiting = session.orphans
    // Closes the connection too when only the channel was lost; never rejects.
    session.close()
    this.#recovering = this.#recover()
  }

  async #recover (): Promise<void> {
    const { reconnectInitialDelayMs, reconnectMaxDelayMs, logger } = this.#settings
    const signal = this.#stop.signal
    for (let attempt = 1; !signal.aborted; attempt++) {
      await sleep(reconnectDelay(attempt, reconnectInitialDelayMs, reconnectMaxDelayMs), undefined, { signal }).catch(noop)
      if (signal.aborted) return
      try {
        const session = await AmqpSession.open(this.#settings)
        logger.info?.({ attempt }, 'fastify-cqrs-stream: reconnected to the AMQP broker')
        this.#adopt(session)
        return
      } catch (error) {
        logger.warn({ err: error, attempt }, 'fastify-cqrs-stream: reconnecting to the AMQP broker failed')
      }
    }
  }
}
