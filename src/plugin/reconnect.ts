import type { FastifyReply } from 'fastify'
import { RemoteFollower } from '../resume/remote-follower.js'
import type { ResumeSettings } from '../resume/resume-settings.js'
import { isSharedStore } from '../resume/stream-store.js'
import { SseConnection, sendEventStream } from '../sse/sse-connection.js'
import type { AttachResult } from '../sse/stream-run.js'
import type { OpenStreams } from './open-streams.js'
import type { RequestScope } from './stream-owner.js'

/** What became of a reconnect: `unknown` means no stream of that id (and scope) is kept here. */
export type ResumeResult = AttachResult | 'unknown'

/** 204 No Content: per the SSE spec, `EventSource` stops reconnecting for good. */
export function noContent (reply: FastifyReply): FastifyReply {
  return reply.code(204).send()
}

/** Where a reconnect is served, and how. */
export interface ResumeTarget {
  /** The reconnecting request's scope: its route's and its owner's. */
  readonly scope: RequestScope
  readonly open: OpenStreams
  readonly heartbeatMs: number
  readonly settings: Required<ResumeSettings>
  /** The route's `namedEvents`, for frames a follower writes itself. */
  readonly namedEvents: boolean
}

/**
 * A stream that does not run here: the kept frames of an ended one are
 * replayed; a running one is followed from a shared store while another
 * instance runs it.
 */
async function resumeFromStore (reply: FastifyReply, streamId: string, afterSeq: number, target: ResumeTarget): Promise<ResumeResult> {
  const { open, scope } = target
  const store = open.store
  const stored = await store.read(streamId, afterSeq)
  if (stored === undefined || !scope.admits(stored.scope, streamId)) return 'unknown'
  const first = stored.frames[0]
  if (!stored.ended) {
    if (!isSharedStore(store) || (first !== undefined && first.seq !== afterSeq + 1)) return 'unavailable'
    const follower = new RemoteFollower({
      store, streamId, settings: target.settings, namedEvents: target.namedEvents, route: scope.route, logger: reply.log, onEnd: open.removeFollower,
    })
    open.addFollower(follower)
    follower.start(new SseConnection(reply.raw, {
      heartbeatMs: target.heartbeatMs,
      headers: reply.getHeaders() as Record<string, string>,
      owner: follower,
      onOpen: () => { reply.hijack() },
    }), stored, afterSeq)
    return 'attached'
  }
  if (first === undefined || first.seq !== afterSeq + 1) return 'unavailable'
  reply.hijack()
  let body = ''
  for (const frame of stored.frames) body += frame.text
  sendEventStream(reply.raw, reply.getHeaders() as Record<string, string>, body)
  return 'attached'
}

/**
 * Serves a client that has seen every frame of `streamId` up to `afterSeq`:
 * the running stream moves to this response, the kept frames of an ended
 * one are replayed, or one running elsewhere is followed from the store. The reply is hijacked only when frames are sent; for
 * any other result the caller answers.
 */
export function resumeStream (reply: FastifyReply, streamId: string, afterSeq: number, target: ResumeTarget): Promise<ResumeResult> {
  const running = target.open.resumable(streamId, target.scope)
  if (running === undefined) return resumeFromStore(reply, streamId, afterSeq, target)
  const connection = new SseConnection(reply.raw, {
    heartbeatMs: target.heartbeatMs,
    headers: reply.getHeaders() as Record<string, string>,
    owner: running,
    onOpen: () => { reply.hijack() },
  })
  return running.attach(connection, afterSeq)
}
