import type { EventStreamSource } from '../sse/stream-run.js'
import type { RequestScope } from './stream-owner.js'

interface Pending {
  readonly scope: string
  readonly source: EventStreamSource<unknown>
  readonly ownerDigest: string | undefined
  readonly expiry: NodeJS.Timeout
}

/** A claimed command: its source, and the owner count it holds (now the run's to release). */
export interface Claimed {
  readonly source: EventStreamSource<unknown>
  readonly ownerDigest: string | undefined
}

/**
 * Commands POSTed to a two-step route and not yet claimed by their GET.
 * Each is dropped, never run, when not claimed within its timeout. A
 * command that holds an owner's count gives it back when it is dropped.
 */
export class PendingStreams {
  readonly #pending = new Map<string, Pending>()
  readonly #release: (ownerDigest: string) => void

  constructor (release: (ownerDigest: string) => void) {
    this.#release = release
  }

  get size (): number { return this.#pending.size }

  /** `scope`: the key of the scope it is kept under (its route's, and its owner's). */
  add (streamId: string, scope: string, source: EventStreamSource<unknown>, claimTimeoutMs: number, ownerDigest: string | undefined): void {
    const expiry = setTimeout(() => { this.#forget(streamId) }, claimTimeoutMs)
    expiry.unref()
    this.#pending.set(streamId, { scope, source, ownerDigest, expiry })
  }

  /** Takes the command posted as `streamId`, once, if `scope` may see it. */
  claim (streamId: string, scope: RequestScope): Claimed | undefined {
    const pending = this.#take(streamId, scope)
    return pending === undefined ? undefined : { source: pending.source, ownerDigest: pending.ownerDigest }
  }

  /** Forgets `streamId` if `scope` may see it; true when it was pending. */
  drop (streamId: string, scope: RequestScope): boolean {
    const pending = this.#take(streamId, scope)
    if (pending === undefined) return false
    if (pending.ownerDigest !== undefined) this.#release(pending.ownerDigest)
    return true
  }

  /** Drops every pending command (the app is closing). */
  clear (): void {
    for (const streamId of [...this.#pending.keys()]) this.#forget(streamId)
  }

  #take (streamId: string, scope: RequestScope): Pending | undefined {
    const pending = this.#pending.get(streamId)
    if (pending === undefined || !scope.admits(pending.scope, streamId)) return undefined
    clearTimeout(pending.expiry)
    this.#pending.delete(streamId)
    return pending
  }

  #forget (streamId: string): void {
    const pending = this.#pending.get(streamId)!
    clearTimeout(pending.expiry)
    this.#pending.delete(streamId)
    if (pending.ownerDigest !== undefined) this.#release(pending.ownerDigest)
  }
}
