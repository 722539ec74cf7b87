import { twoStepPendingChannel } from '../diagnostics.js'
import { StreamStoreUnavailableError } from '../errors.js'
import { isSharedStore, type StoredCommand, type StreamStore } from '../resume/stream-store.js'
import type { RequestScope } from './stream-owner.js'

interface Pending {
  readonly scope: string
  // Kept here with an unshared store; with a shared one, the store keeps it.
  readonly command: StoredCommand | undefined
  readonly ownerDigest: string | undefined
  readonly expiry: NodeJS.Timeout
  // Set when its posting was published on the two-step channel: its end is, too.
  readonly route: string | undefined
}

interface Logger { warn (object: object, message: string): void }

/** A store failure as a 503: a coded error of the store's passes as it is; any other (a dropped connection) is wrapped. */
function unavailable (error: unknown): Error {
  if (error instanceof Error && typeof (error as { statusCode?: unknown }).statusCode === 'number') return error
  return new StreamStoreUnavailableError(String(error), { cause: error })
}

/**
 * Commands POSTed to a two-step route and not yet claimed by their GET.
 * Each is dropped, never run, when not claimed within its timeout. With a
 * shared store the command is kept there, so its GET (or a cancel) can take
 * it on any instance, once; this instance keeps a record of the commands
 * posted here for its counts (`maxPendingStreams`, the owner's streams),
 * dropped when the command is taken anywhere (a `taken` signal) or expires.
 */
export class PendingStreams {
  readonly #pending = new Map<string, Pending>()
  readonly #store: StreamStore
  readonly #release: (ownerDigest: string) => void

  constructor (store: StreamStore, release: (ownerDigest: string) => void) {
    this.#store = store
    this.#release = release
  }

  get size (): number { return this.#pending.size }

  /** True when `streamId` was posted here and is not taken yet. */
  has (streamId: string): boolean { return this.#pending.has(streamId) }

  /** Keeps `command` for `claimTimeoutMs`; `ownerDigest`: the owner count it holds until then. */
  async add (streamId: string, command: StoredCommand, claimTimeoutMs: number, ownerDigest: string | undefined, route: string): Promise<void> {
    const store = this.#store
    const shared = isSharedStore(store)
    const expiry = setTimeout(() => { this.forget(streamId) }, claimTimeoutMs)
    expiry.unref()
    const counted = twoStepPendingChannel.hasSubscribers
    this.#pending.set(streamId, { scope: command.scope, command: shared ? undefined : command, ownerDigest, expiry, route: counted ? route : undefined })
    if (counted) twoStepPendingChannel.publish({ streamId, route, change: 1 })
    if (!shared) return
    try {
      await store.putCommand(streamId, command, claimTimeoutMs)
    } catch (error) {
      this.forget(streamId)
      throw unavailable(error)
    }
  }

  /**
   * Takes the command posted as `streamId`, once, if `scope` may see it:
   * for its GET to run (`claimTtlMs`: how long its stream reads as
   * running before the claimer opens it), or to cancel it (0).
   */
  async take (streamId: string, scope: RequestScope, logger: Logger, claimTtlMs = 0): Promise<StoredCommand | undefined> {
    const store = this.#store
    if (!isSharedStore(store)) {
      const pending = this.#pending.get(streamId)
      if (pending === undefined || !scope.admits(pending.scope, streamId)) return undefined
      this.forget(streamId)
      return pending.command
    }
    const scopes = scope.ownerDigest === undefined ? [scope.route] : [scope.route, scope.key]
    const found = await store.takeCommand(streamId, scopes, claimTtlMs).catch((error: unknown) => { throw unavailable(error) })
    if (found === undefined) return undefined
    // Another owner's: admits() logs and publishes the refusal.
    if (!found.taken) {
      scope.admits(found.scope, streamId)
      return undefined
    }
    this.forget(streamId)
    store.signal({ type: 'taken', streamId }).then(undefined, (error: unknown) => {
      logger.warn({ err: error, streamId }, 'fastify-cqrs-stream: the instance a two-step command was posted to was not told it was taken; it counts it until it expires')
    })
    return found.command
  }

  /** Stops counting `streamId` (taken, here or elsewhere, or expired). */
  readonly forget = (streamId: string): void => {
    const pending = this.#pending.get(streamId)
    if (pending === undefined) return
    clearTimeout(pending.expiry)
    this.#pending.delete(streamId)
    if (pending.ownerDigest !== undefined) this.#release(pending.ownerDigest)
    if (pending.route !== undefined) twoStepPendingChannel.publish({ streamId, route: pending.route, change: -1 })
  }

  /** Stops counting every pending command (the app is closing); a shared store keeps them for another instance. */
  clear (): void {
    for (const streamId of [...this.#pending.keys()]) this.forget(streamId)
  }
}
