import { ShutdownError } from '../errors.js'
import type { StreamStore } from '../resume/stream-store.js'
import type { StreamRun } from '../sse/stream-run.js'

/** The running streams of one app: ended on `app.close()`, found by id on a reconnect. */
export class OpenStreams {
  readonly #runs = new Set<StreamRun<unknown>>()
  readonly #resumable = new Map<string, StreamRun<unknown>>()
  readonly store: StreamStore
  closing = false

  constructor (store: StreamStore) {
    this.store = store
  }

  add (run: StreamRun<unknown>): void {
    this.#runs.add(run)
    if (run.scope !== undefined) this.#resumable.set(run.streamId, run)
  }

  readonly remove = (run: StreamRun<unknown>): void => {
    this.#runs.delete(run)
    if (this.#resumable.get(run.streamId) === run) this.#resumable.delete(run.streamId)
  }

  /** The running resumable stream `streamId`, if it was opened under `scope`. */
  resumable (streamId: string, scope: string): StreamRun<unknown> | undefined {
    const run = this.#resumable.get(streamId)
    return run?.scope === scope ? run : undefined
  }

  /**
   * Terminate every running stream with a shutdown `error` frame; resolves
   * when every response is closed, clients that do not read within
   * `graceMs` being disconnected.
   */
  shutdown (graceMs: number): Promise<void[]> {
    this.closing = true
    const reason = new ShutdownError()
    const done: Promise<void>[] = []
    for (const run of this.#runs) {
      run.terminate(reason, graceMs)
      done.push(run.closed)
    }
    return Promise.all(done)
  }
}
