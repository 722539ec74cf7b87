import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib'
import { BrokerRejectedError, BrokerUnavailableError } from '../errors.js'
import type { AmqpSettings } from './amqp-options.js'
import type { PendingSend } from './pending-send.js'

// Best-effort cleanup (closing what may already be closed) ends quietly.
const noop = (): void => {}

/**
 * One connection and its confirm channel, from the handshake to its loss:
 * publishes messages and settles them on the broker's ack or nack. When the
 * channel closes on its own (the connection dropped, or the broker closed
 * the channel), `lost` resolves and `orphans` holds the messages published
 * but not confirmed; the broker publishes them again on the next session.
 */
export class AmqpSession {
  readonly #model: ChannelModel
  readonly #settings: AmqpSettings
  #channel!: ConfirmChannel
  #unconfirmed = new Set<PendingSend>()
  #open = true
  #connectionOpen = true
  #reason: Error | undefined
  #markLost!: () => void
  /** Resolves when the channel closed without `close()`. */
  readonly lost = new Promise<void>((resolve) => { this.#markLost = resolve })
  /** Published, unconfirmed when the channel was lost. */
  orphans = new Set<PendingSend>()

  private constructor (model: ChannelModel, settings: AmqpSettings) {
    this.#model = model
    this.#settings = settings
    // An 'error' without a listener would throw; the reason is logged with the loss.
    model.on('error', (error: Error) => { this.#reason = error })
    model.on('close', (error?: Error) => {
      this.#connectionOpen = false
      if (error !== undefined) this.#reason = error
    })
  }

  /** Why the channel was lost. */
  get reason (): Error | undefined { return this.#reason }

  /** False when the broker closed only the channel (a deleted exchange, a refused permission). */
  get connectionOpen (): boolean { return this.#connectionOpen }

  /**
   * Connects, opens a confirm channel and asserts the exchange, within
   * `connectTimeoutMs`. Rejects with `FST_ERR_CQRS_STREAM_BROKER_UNAVAILABLE`;
   * a connection that opens after the deadline is closed at once.
   */
  static open (settings: AmqpSettings): Promise<AmqpSession> {
    const opening = AmqpSession.#connect(settings)
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new BrokerUnavailableError(settings.address,
        `no connection within connectTimeoutMs (${settings.connectTimeoutMs} ms)`)), settings.connectTimeoutMs)
    })
    return Promise.race([opening, deadline]).finally(() => clearTimeout(timer)).catch((error: unknown) => {
      opening.then((session) => session.close(), noop)
      return Promise.reject(error instanceof BrokerUnavailableError
        ? error
        : new BrokerUnavailableError(settings.address, `cannot connect (${(error as Error).message})`, { cause: error }))
    })
  }

  static async #connect (settings: AmqpSettings): Promise<AmqpSession> {
    // amqplib's socket timeout ends a handshake that hangs (a port that
    // accepts and stays silent) instead of leaving the socket open. noDelay:
    // a publish written while others await their confirm is not held back
    // by Nagle's algorithm.
    const model = await connect(settings.url, { timeout: settings.connectTimeoutMs, noDelay: true, ...settings.socketOptions })
    const session = new AmqpSession(model, settings)
    try {
      const channel = await model.createConfirmChannel()
      // First in line: the unconfirmed set is swapped out before amqplib
      // fails their callbacks with 'channel closed'.
      channel.prependListener('close', () => session.#lose())
      channel.on('error', (error: Error) => { session.#reason = error })
      session.#channel = channel
      await channel.assertExchange(settings.exchange, 'topic', { durable: true })
      return session
    } catch (error) {
      model.close().then(noop, noop)
      throw error
    }
  }

  /** Publishes `send`'s message; it settles on the broker's ack or nack, or moves to `orphans`. */
  publish (send: PendingSend): void {
    if (!this.#open) {
      // Lost, and the broker has not seen it yet (it will, a microtask
      // later): code resumed by an ack read with the close frame gets here.
      send.moveTo(this.orphans)
      return
    }
    send.moveTo(this.#unconfirmed)
    send.published = true
    const { message } = send
    try {
      this.#channel.publish(this.#settings.exchange, message.topic, Buffer.from(JSON.stringify(message.payload)), {
        persistent: true,
        messageId: message.messageId,
        type: message.messageName,
        contentType: 'application/json',
        ...(message.headers === undefined ? {} : { headers: message.headers }),
      }, (error: unknown) => this.#confirmed(send, error))
    } catch (error) {
      // amqplib checks the frame before writing it: nothing was sent.
      send.reject(new BrokerRejectedError(message.messageId, `it cannot be published (${(error as Error).message})`, { cause: error }))
    }
  }

  #confirmed (send: PendingSend, error: unknown): void {
    // Orphaned by a lost channel, or timed out: no longer this channel's to settle.
    if (!send.isIn(this.#unconfirmed)) return
    if (error === null) send.resolve()
    else send.reject(new BrokerRejectedError(send.message.messageId, 'the broker nacked it (e.g. a full queue with x-overflow reject-publish)', { cause: error }))
  }

  #lose (): void {
    if (!this.#open) return
    this.#open = false
    this.orphans = this.#unconfirmed
    this.#unconfirmed = new Set()
    this.#markLost()
  }

  /**
   * Closes the channel, then the connection; resolves within
   * `connectTimeoutMs` even when the broker does not answer.
   */
  async close (): Promise<void> {
    this.#open = false
    const closing = this.#channel.close().then(noop, noop).then(() => this.#model.close()).then(noop, noop)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([closing, new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#settings.connectTimeoutMs) })])
    clearTimeout(timer)
  }
}
