/** Told when the remote client is gone: it left, or its instance stopped renewing the lease. */
export interface RemoteSinkOwner {
  connectionLost (): void
}

/**
 * Stands in, on the instance that runs a stream, for a client that follows
 * it from another instance through the shared store. Frames reach that
 * client through the store, so `push` only counts them; the follower's
 * reports of how far it got give the run backpressure across instances,
 * and renew a lease that ends the sink when the other instance goes quiet.
 */
export class RemoteSink {
  readonly #owner: RemoteSinkOwner
  readonly #highWater: number
  readonly follower: string
  #lag: number
  #wake: (() => void) | undefined
  #lease: NodeJS.Timeout

  /**
   * `lag`: frames produced that the follower has not had yet. The run waits
   * while `highWater` frames are unread, so the store (which keeps a bounded
   * number) never drops one the follower still needs.
   */
  constructor (owner: RemoteSinkOwner, follower: string, lag: number, highWater: number, leaseMs: number) {
    this.#owner = owner
    this.follower = follower
    this.#lag = lag
    this.#highWater = highWater
    this.#lease = setTimeout(lapse, leaseMs, this)
    this.#lease.unref()
  }

  get blocked (): boolean { return this.#lag >= this.#highWater }

  /** Nothing to flush or close here: the other instance holds the response. */
  get done (): Promise<void> { return Promise.resolve() }

  writable (): Promise<void> {
    return new Promise((resolve) => { this.#wake = resolve })
  }

  push (_frame: string): void {
    this.#lag++
  }

  /** The follower has every frame but the last `lag`: renews the lease. */
  progress (lag: number): void {
    this.#lag = lag
    this.#lease.refresh()
    if (!this.blocked) this.#wakeUp()
  }

  /**
   * The follower's client left, or its lease lapsed: the run waits for a
   * reconnect as after a disconnect. Only the run's current sink is told
   * (an ended one has no lease, and an ended run gets no signals).
   */
  leave (): void {
    this.end()
    this.#owner.connectionLost()
  }

  /** Replaced by another client, or the run ended: the follower learns it from the store. */
  end (): void {
    clearTimeout(this.#lease)
    this.#wakeUp()
  }

  endWithin (_lastFrame: string, _graceMs: number | undefined): void {
    this.end()
  }

  #wakeUp (): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }
}

function lapse (sink: RemoteSink): void { sink.leave() }
