import {
  runEndChannel, runEventChannel, runStartChannel, type RunEventMessage, type RunOutcome, type RunStartMessage,
} from '../diagnostics.js'
import type { ByteCounter } from './sse-connection.js'

/**
 * What a run reports on the `run:*` diagnostics channels: made only when
 * someone listens (the OpenTelemetry module, a metrics subscriber), so a
 * run without listeners counts nothing.
 */
export class RunTelemetry implements ByteCounter {
  readonly run: RunStartMessage
  frames = 0
  items = 0
  bytes = 0
  reconnects = 0

  private constructor (run: RunStartMessage) {
    this.run = run
  }

  /** Publishes the start; undefined when nothing listens. */
  static start (streamId: string, route: string | undefined, command: string | undefined, resumable: boolean): RunTelemetry | undefined {
    if (!runStartChannel.hasSubscribers && !runEndChannel.hasSubscribers) return undefined
    const run: RunStartMessage = { streamId, route, command, resumable, traceContext: {} }
    runStartChannel.publish(run)
    return new RunTelemetry(run)
  }

  /** The context a tracer wrote at the start; undefined when none did. */
  get traceContext (): Record<string, string> | undefined {
    const { traceContext } = this.run
    return Object.keys(traceContext).length === 0 ? undefined : traceContext
  }

  /** A frame produced; its bytes are counted by the connections that write it (`SseConnection.countBytes`). */
  frame (item: boolean): void {
    this.frames++
    if (item) this.items++
  }

  event (name: RunEventMessage['name']): void {
    if (name !== 'disconnect') this.reconnects++
    if (runEventChannel.hasSubscribers) runEventChannel.publish({ run: this.run, name } satisfies RunEventMessage)
  }

  end (outcome: RunOutcome, error: unknown): void {
    if (!runEndChannel.hasSubscribers) return
    const { run, frames, items, bytes, reconnects } = this
    runEndChannel.publish({ run, outcome, error, frames, items, bytes, reconnects })
  }
}
