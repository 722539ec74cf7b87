import type { EventStreamSource } from '../sse/stream-run.js'

interface Pending {
  readonly scope: string
  readonly source: EventStreamSource<unknown>
  readonly expiry: NodeJS.Timeout
}

/**
 * Commands POSTed to a two-step route and not yet claimed by their GET.
 * Each is dropped, never run, when not claimed within its timeout.
 */
export class PendingStreams {
  readonly #pending = new Map<string, Pending>()

  add (streamId: string, scope: string, source: EventStreamSource<unknown>, claimTimeoutMs: number): void {
    const expiry = setTimeout(() => { this.#pending.delete(streamId) }, claimTimeoutMs)
    expiry.unref()
    this.#pending.set(streamId, { scope, source, expiry })
  }

  /** Takes the command posted under `scope` as `streamId`, once. */
  claim (streamId: string, scope: string): EventStreamSource<unknown> | undefined {
    const pending = this.#pending.get(streamId)
    if (!this.drop(streamId, scope)) return undefined
    return pending!.source
  }

  /** Forgets `streamId` if it was posted under `scope`; true when it was pending. */
  drop (streamId: string, scope: string): boolean {
    const pending = this.#pending.get(streamId)
    if (pending?.scope !== scope) return false
    clearTimeout(pending.expiry)
    return this.#pending.delete(streamId)
  }

  /** Drops every pending command (the app is closing). */
  clear (): void {
    for (const pending of this.#pending.values()) clearTimeout(pending.expiry)
    this.#pending.clear()
  }
}
