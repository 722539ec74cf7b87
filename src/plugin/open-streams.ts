import { ShutdownError, StreamCancelledError } from '../errors.js'
import type { RemoteFollower } from '../resume/remote-follower.js'
import { isSharedStore, type StreamSignal, type StreamStore } from '../resume/stream-store.js'
import type { StreamRun } from '../sse/stream-run.js'
import type { RequestScope } from './stream-owner.js'

/**
 * What `app.streamStats()` reports.
 * @example
 * { openStreams: 12, pendingStreams: 1, followers: 3, owners: 9 }
 */
export interface StreamStats {
  /** Streams running here, including resumable ones whose client is away (`limits.maxOpenStreams` counts these and `pendingStreams`). */
  readonly openStreams: number
  /** Two-step commands posted here and not yet claimed (`limits.maxPendingStreams`). */
  readonly pendingStreams: number
  /** Clients here that follow a stream running on another instance. */
  readonly followers: number
  /** Owners with at least one stream (running or pending) here. */
  readonly owners: number
}

/**
 * The running streams of one app: ended on `app.close()`, found by id on a
 * reconnect, and told of the signals other instances send through a shared
 * store; plus the clients here that follow streams of other instances.
 */
export class OpenStreams {
  readonly #runs = new Set<StreamRun<unknown>>()
  readonly #resumable = new Map<string, StreamRun<unknown>>()
  readonly #followers = new Set<RemoteFollower>()
  // Streams (running, or posted and unclaimed) per owner digest; and the owner of each counted run.
  readonly #owners = new Map<string, number>()
  readonly #runOwners = new Map<StreamRun<unknown>, string>()
  readonly store: StreamStore
  #stopListening: (() => void) | undefined
  closing = false

  constructor (store: StreamStore) {
    this.store = store
  }

  /**
   * Listens to a shared store's signals. Resolves once they arrive, or after
   * `timeoutMs` with a warning: the store may be down, and streams work
   * without it (the store subscribes when it is back). A store whose
   * subscription fails makes the boot fail.
   */
  async listen (timeoutMs: number, logger: { warn (object: object, message: string): void }, onTaken: (streamId: string) => void): Promise<void> {
    const store = this.store
    if (!isSharedStore(store)) return
    let timer: NodeJS.Timeout | undefined
    const listener = (message: StreamSignal): void => {
      if (message.type === 'taken') onTaken(message.streamId)
      else this.#onSignal(message)
    }
    const listening = store.onSignal(listener).then((stop) => { this.#stopListening = stop })
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(resolve, timeoutMs, 'late') })
    const outcome = await Promise.race([listening, late])
    clearTimeout(timer)
    if (outcome === 'late') {
      logger.warn({ timeoutMs }, 'fastify-cqrs-stream: the stream store does not deliver signals yet (is it reachable?); until it does, resumes on other instances and their cancels do not reach this one')
    }
  }

  #onSignal (message: Exclude<StreamSignal, { type: 'taken' }>): void {
    const run = this.#resumable.get(message.streamId)
    if (run === undefined) return
    if (message.type === 'follow') run.remoteFollow(message.follower, message.seq)
    else if (message.type === 'leave') run.remoteLeft(message.follower)
    else run.terminate(new StreamCancelledError())
  }

  addFollower (follower: RemoteFollower): void {
    this.#followers.add(follower)
  }

  readonly removeFollower = (follower: RemoteFollower): void => {
    this.#followers.delete(follower)
  }

  /** Streams running here, including resumable ones whose client is away. */
  get size (): number { return this.#runs.size }

  /** Streams counted for `ownerDigest`. */
  ownerCount (ownerDigest: string): number { return this.#owners.get(ownerDigest) ?? 0 }

  acquireOwner (ownerDigest: string): void {
    this.#owners.set(ownerDigest, this.ownerCount(ownerDigest) + 1)
  }

  readonly releaseOwner = (ownerDigest: string): void => {
    const count = this.ownerCount(ownerDigest) - 1
    if (count > 0) this.#owners.set(ownerDigest, count)
    else this.#owners.delete(ownerDigest)
  }

  /** See {@link StreamStats}; `pendingStreams` comes from the pending commands. */
  stats (pendingStreams: number): StreamStats {
    return { openStreams: this.#runs.size, pendingStreams, followers: this.#followers.size, owners: this.#owners.size }
  }

  /** `ownerDigest`: the owner's count, acquired for this run, is released when it ends. */
  add (run: StreamRun<unknown>, ownerDigest?: string): void {
    this.#runs.add(run)
    if (run.scope !== undefined) this.#resumable.set(run.streamId, run)
    if (ownerDigest !== undefined) this.#runOwners.set(run, ownerDigest)
  }

  readonly remove = (run: StreamRun<unknown>): void => {
    this.#runs.delete(run)
    if (this.#resumable.get(run.streamId) === run) this.#resumable.delete(run.streamId)
    const owner = this.#runOwners.get(run)
    if (owner === undefined) return
    this.#runOwners.delete(run)
    this.releaseOwner(owner)
  }

  /** The running resumable stream `streamId`, if `scope` may see it. */
  resumable (streamId: string, scope: RequestScope): StreamRun<unknown> | undefined {
    const run = this.#resumable.get(streamId)
    return run?.scope !== undefined && scope.admits(run.scope, streamId) ? run : undefined
  }

  /**
   * Terminate every running stream with a shutdown `error` frame; resolves
   * when every response is closed, clients that do not read within
   * `graceMs` being disconnected.
   */
  shutdown (graceMs: number): Promise<void[]> {
    this.closing = true
    this.#stopListening?.()
    this.#stopListening = undefined
    // Their streams go on elsewhere: dropped, the clients reconnect to another instance.
    for (const follower of this.#followers) follower.terminate()
    const reason = new ShutdownError()
    const done: Promise<void>[] = []
    for (const run of this.#runs) {
      run.terminate(reason, graceMs)
      done.push(run.closed)
    }
    return Promise.all(done)
  }
}
