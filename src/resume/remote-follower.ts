import { randomUUID } from 'node:crypto'
import { followEndChannel, followStartChannel, type FollowMessage, type FollowOutcome } from '../diagnostics.js'
import { OwnerLostError } from '../errors.js'
import { errorFrame } from '../sse/frame-encoder.js'
import { toPublicError } from '../sse/public-error.js'
import type { SseConnection } from '../sse/sse-connection.js'
import type { RunLogger } from '../sse/stream-run.js'
import type { ResumeSettings } from './resume-settings.js'
import type { SharedStreamStore, StoredStream } from './stream-store.js'

export interface RemoteFollowerOptions {
  readonly store: SharedStreamStore
  readonly streamId: string
  readonly settings: Required<ResumeSettings>
  readonly logger: RunLogger
  /** The route's `namedEvents`: the owner-lost frame is encoded as the stream's own. */
  readonly namedEvents: boolean
  /** The route's url, for telemetry. */
  readonly route: string
  /** Called once the follower has stopped, whichever way. */
  readonly onEnd: (follower: RemoteFollower) => void
}

/**
 * Serves a client that reconnected to this instance for a stream another
 * instance runs: the frames it missed, then each new frame, read from the
 * shared store. It tells the owner how far the client got (a lease and
 * backpressure) and when the client leaves. When the store loses the stream
 * or skips a frame, the response is dropped without a last frame: the
 * client reconnects, and gets 204 when the stream cannot be resumed.
 */
export class RemoteFollower {
  readonly #options: RemoteFollowerOptions
  readonly #id = randomUUID()
  readonly #controller = new AbortController()
  readonly #reportEvery: number
  #connection: SseConnection | undefined
  #seen = 0
  #reported = 0
  #lease: NodeJS.Timeout | undefined
  #ended = false
  #telemetry: FollowMessage | undefined

  constructor (options: RemoteFollowerOptions) {
    this.#options = options
    this.#reportEvery = Math.max(1, Math.floor(options.settings.maxBufferedFrames / 4))
  }

  /** Sends the frames of `first` (read after `afterSeq`) and follows the stream; the connection is opened here. */
  start (connection: SseConnection, first: StoredStream, afterSeq: number): void {
    this.#seen = afterSeq
    this.#reported = afterSeq
    if (followStartChannel.hasSubscribers || followEndChannel.hasSubscribers) {
      this.#telemetry = { streamId: this.#options.streamId, route: this.#options.route, ownerTraceContext: first.traceContext ?? {}, frames: 0 }
      followStartChannel.publish(this.#telemetry)
    }
    if (!connection.open()) {
      this.#finish('disconnect')
      return
    }
    this.#connection = connection
    this.#report()
    this.#lease = setInterval(report, Math.max(1, Math.floor(this.#options.settings.windowMs / 3)), this)
    this.#lease.unref()
    const more = this.#deliver(first)
    // Nothing missed: the client should not wait for the next frame to see the stream is back.
    if (this.#seen === afterSeq) connection.flushHeaders()
    if (more) this.#follow()
  }

  /** This instance is closing: the response is dropped, so the client reconnects to another one. */
  terminate (): void {
    this.#connection?.end()
    this.#stop('shutdown')
  }

  /** The client left. */
  connectionLost (): void {
    this.#stop('disconnect')
  }

  async #follow (): Promise<void> {
    const { store, streamId } = this.#options
    const connection = this.#connection!
    try {
      // A client that leaves aborts the iteration: the loop needs no check of its own.
      const { namedEvents, settings } = this.#options
      const ending = { lostFrame: (seq: number) => errorFrame(streamId, seq, LOST, namedEvents), keepMs: settings.windowMs }
      for await (const batch of store.follow(streamId, this.#seen, this.#controller.signal, ending)) {
        if (!this.#deliver(batch)) return
        if (connection.blocked) await connection.writable()
      }
    } catch (error) {
      // Stopping the follower cuts its read too: only a failure of its own is worth a warning.
      if (!this.#ended) {
        this.#options.logger.warn({ err: error, streamId }, 'fastify-cqrs-stream: following a stream from the store failed; the client will reconnect')
      }
    }
    // The stream was deleted (aborted) or expired, the store failed, or the follower stopped.
    connection.end()
    this.#stop('lost')
  }

  /** Pushes the frames after the ones seen; false once the follower is done. */
  #deliver (batch: StoredStream): boolean {
    const connection = this.#connection!
    // A store yields only frames after the ones asked for: anything but the next one is a gap.
    for (const frame of batch.frames) {
      if (frame.seq !== this.#seen + 1) {
        // Frames were dropped from the store before this client had them.
        connection.end()
        this.#stop('lost')
        return false
      }
      connection.push(frame.text)
      this.#seen = frame.seq
      if (this.#telemetry !== undefined) this.#telemetry.frames++
    }
    if (batch.ended) {
      connection.end('')
      this.#finish('complete')
      return false
    }
    if (this.#seen - this.#reported >= this.#reportEvery) this.#report()
    return true
  }

  /** @internal the lease timer and progress reports. */
  report (): void {
    this.#report()
  }

  #report (): void {
    this.#reported = this.#seen
    const { store, streamId } = this.#options
    this.#send(store.signal({ type: 'follow', streamId, follower: this.#id, seq: this.#seen }))
  }

  #stop (outcome: FollowOutcome): void {
    if (this.#ended) return
    const { store, streamId } = this.#options
    this.#send(store.signal({ type: 'leave', streamId, follower: this.#id }))
    this.#finish(outcome)
  }

  // Reached once: from start(), the last batch, or the guarded #stop().
  #finish (outcome: FollowOutcome): void {
    this.#ended = true
    clearInterval(this.#lease)
    this.#controller.abort()
    this.#options.onEnd(this)
    if (this.#telemetry !== undefined && followEndChannel.hasSubscribers) {
      this.#telemetry.outcome = outcome
      followEndChannel.publish(this.#telemetry)
    }
  }

  #send (sent: Promise<void>): void {
    sent.then(undefined, (error: unknown) => {
      this.#options.logger.warn({ err: error, streamId: this.#options.streamId }, 'fastify-cqrs-stream: a signal to the stream\'s owner failed')
    })
  }
}

function report (follower: RemoteFollower): void { follower.report() }

const LOST = toPublicError(new OwnerLostError())
