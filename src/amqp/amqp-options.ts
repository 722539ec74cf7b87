import type { Options, SocketOptions } from 'amqplib'
import { InvalidOptionError } from '../errors.js'
import { brokerAddress } from './broker-address.js'

/**
 * Where the broker reports connection losses and reconnects; pino (`app.log`)
 * fits. `info` is optional: without it, reconnects are not logged.
 * @example
 * logger: app.log
 */
export interface AmqpBrokerLogger {
  /** A lost connection, a failed reconnect attempt. */
  warn (object: object, message: string): void
  /** A channel the broker closed on an error (a deleted exchange, a refused permission). */
  error (object: object, message: string): void
  /** A successful reconnect. */
  info? (object: object, message: string): void
}

/**
 * Options of {@link AmqpMessageBroker.connect}.
 * @example
 * const broker = await AmqpMessageBroker.connect({
 *   url: 'amqp://guest:guest@127.0.0.1:5672',
 *   exchange: 'orders.events',
 *   logger: app.log,
 * })
 */
export interface AmqpMessageBrokerOptions {
  /**
   * The broker: an `amqp://` or `amqps://` URL, or amqplib's connect object
   * (`{ hostname, port, username, password, vhost, heartbeat, … }`). The
   * password never appears in errors or logs.
   * @example
   * url: 'amqp://user:secret@rabbit.internal:5672/orders?heartbeat=10'
   */
  url: string | Options.Connect
  /**
   * The topic exchange messages are published to, with the event's topic as
   * routing key. Asserted durable at every (re)connect.
   */
  exchange: string
  /**
   * amqplib's socket options: TLS certificates, `clientProperties`
   * (e.g. `{ connection_name: 'orders-api' }`), keep-alive. `recovery` is not
   * accepted: the broker reconnects by itself.
   */
  socketOptions?: SocketOptions
  /**
   * Bounds opening a connection (TCP, AMQP handshake, channel, exchange
   * assertion) and the closing handshake in `close()`.
   * @default 5000
   */
  connectTimeoutMs?: number
  /**
   * Bounds each `send()`, from the call to the broker's confirm, waiting for a
   * reconnect included. Past it, `send()` rejects with
   * `FST_ERR_CQRS_STREAM_BROKER_UNAVAILABLE`.
   * @default 10000
   */
  sendTimeoutMs?: number
  /**
   * The first reconnect delay after a lost connection; it doubles on every
   * failed attempt up to `reconnectMaxDelayMs`. Each delay is drawn between
   * its half and its whole, so restarted brokers are not hit by every client
   * at once.
   * @default 100
   */
  reconnectInitialDelayMs?: number
  /** The longest reconnect delay; at least `reconnectInitialDelayMs`. @default 5000 (or `reconnectInitialDelayMs` if larger) */
  reconnectMaxDelayMs?: number
  /** Where connection losses and reconnects are logged. @default console */
  logger?: AmqpBrokerLogger
}

/** The options, checked, with their defaults. */
export interface AmqpSettings {
  readonly url: string | Options.Connect
  /** The URL without its password, for errors and logs. */
  readonly address: string
  readonly exchange: string
  readonly socketOptions: SocketOptions
  readonly connectTimeoutMs: number
  readonly sendTimeoutMs: number
  readonly reconnectInitialDelayMs: number
  readonly reconnectMaxDelayMs: number
  readonly logger: AmqpBrokerLogger
}

// setTimeout fires at once for delays above 2^31 - 1 ms.
const MAX_DELAY_MS = 2_147_483_647

const consoleLogger: AmqpBrokerLogger = {
  warn: (object, message) => console.warn(message, object),
  error: (object, message) => console.error(message, object),
}

function milliseconds (name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (!(Number.isInteger(value) && (value as number) >= min && (value as number) <= MAX_DELAY_MS)) {
    throw new InvalidOptionError(name, `must be an integer of milliseconds from ${min} to ${MAX_DELAY_MS}, got ${String(value)}`)
  }
  return value as number
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function checkUrl (url: unknown): void {
  if (isObject(url)) return
  if (typeof url !== 'string') throw new InvalidOptionError('url', 'must be an amqp:// or amqps:// URL, or an amqplib connect object')
  const protocol = URL.canParse(url) ? new URL(url).protocol : ''
  if (protocol !== 'amqp:' && protocol !== 'amqps:') {
    throw new InvalidOptionError('url', `must be an amqp:// or amqps:// URL, got "${brokerAddress(url)}"`)
  }
}

/** Throws `FST_ERR_CQRS_STREAM_INVALID_OPTION` naming the first bad option. */
export function resolveAmqpOptions (options: AmqpMessageBrokerOptions): AmqpSettings {
  if (!isObject(options)) throw new InvalidOptionError('options', 'must be an object with url and exchange')
  checkUrl(options.url)
  const { exchange, socketOptions = {}, logger = consoleLogger } = options
  // Exchange names are AMQP short strings: at most 255 bytes.
  if (typeof exchange !== 'string' || exchange === '' || Buffer.byteLength(exchange) > 255) {
    throw new InvalidOptionError('exchange', 'must be a non-empty string of at most 255 bytes')
  }
  if (!isObject(socketOptions) || 'recovery' in socketOptions) {
    throw new InvalidOptionError('socketOptions', 'must be an object of amqplib socket options, without recovery (the broker reconnects by itself)')
  }
  if (!isObject(logger) || typeof logger.warn !== 'function' || typeof logger.error !== 'function' ||
    !(logger.info === undefined || typeof logger.info === 'function')) {
    throw new InvalidOptionError('logger', 'must have warn() and error() methods, and info() if any')
  }
  const reconnectInitialDelayMs = milliseconds('reconnectInitialDelayMs', options.reconnectInitialDelayMs, 100, 1)
  const reconnectMaxDelayMs = milliseconds('reconnectMaxDelayMs', options.reconnectMaxDelayMs, Math.max(5000, reconnectInitialDelayMs), reconnectInitialDelayMs)
  return {
    url: options.url,
    address: brokerAddress(options.url),
    exchange,
    socketOptions,
    connectTimeoutMs: milliseconds('connectTimeoutMs', options.connectTimeoutMs, 5000, 1),
    sendTimeoutMs: milliseconds('sendTimeoutMs', options.sendTimeoutMs, 10_000, 1),
    reconnectInitialDelayMs,
    reconnectMaxDelayMs,
    logger,
  }
}
