import type { BrokerMessage } from '../brokers/message-broker.js'

/**
 * One `send()` until it settles: the message, its promise, its deadline, and
 * the one set that holds it (the broker's waiting list, a channel's
 * unconfirmed messages, or a lost channel's orphans). Settling takes it out
 * of that set, so a late confirm or a re-publish cannot touch it again.
 */
export class PendingSend {
  readonly message: BrokerMessage
  readonly promise: Promise<void>
  /** Written to a channel at least once: the broker may have it. */
  published = false
  #resolve!: () => void
  #reject!: (error: Error) => void
  #home: Set<PendingSend> | undefined
  readonly #timer: NodeJS.Timeout

  constructor (message: BrokerMessage, timeoutMs: number, onTimeout: (send: PendingSend) => Error, onSettled: () => void) {
    this.message = message
    this.promise = new Promise<void>((resolve, reject) => {
      this.#resolve = () => { onSettled(); resolve() }
      this.#reject = (error) => { onSettled(); reject(error) }
    })
    this.#timer = setTimeout(() => this.reject(onTimeout(this)), timeoutMs)
  }

  /** Whether `set` holds it now. */
  isIn (set: Set<PendingSend>): boolean { return this.#home === set }

  /** Moves it into `set`, out of the set that held it. */
  moveTo (set: Set<PendingSend>): void {
    this.#home?.delete(this)
    this.#home = set
    set.add(this)
  }

  resolve (): void {
    this.#leave()
    this.#resolve()
  }

  reject (error: Error): void {
    this.#leave()
    this.#reject(error)
  }

  #leave (): void {
    clearTimeout(this.#timer)
    this.#home!.delete(this)
    this.#home = undefined
  }
}
