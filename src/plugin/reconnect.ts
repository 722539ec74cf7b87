import type { FastifyReply } from 'fastify'
import type { StreamStore } from '../resume/stream-store.js'
import { SseConnection, sendEventStream } from '../sse/sse-connection.js'
import type { AttachResult } from '../sse/stream-run.js'
import type { OpenStreams } from './open-streams.js'

/** What became of a reconnect: `unknown` means no stream of that id (and scope) is kept here. */
export type ResumeResult = AttachResult | 'unknown'

/** 204 No Content: per the SSE spec, `EventSource` stops reconnecting for good. */
export function noContent (reply: FastifyReply): FastifyReply {
  return reply.code(204).send()
}

/** Sends every kept frame after `afterSeq` of a stream that has ended, then ends the response. */
async function replayEnded (reply: FastifyReply, store: StreamStore, streamId: string, scope: string, afterSeq: number): Promise<ResumeResult> {
  const stored = await store.read(streamId, afterSeq)
  if (stored === undefined || stored.scope !== scope) return 'unknown'
  const first = stored.frames[0]
  if (!stored.ended || first === undefined || first.seq !== afterSeq + 1) return 'unavailable'
  reply.hijack()
  let body = ''
  for (const frame of stored.frames) body += frame.text
  sendEventStream(reply.raw, reply.getHeaders() as Record<string, string>, body)
  return 'attached'
}

/**
 * Serves a client that has seen every frame of `streamId` up to `afterSeq`:
 * the running stream moves to this response, or the kept frames of an ended
 * one are replayed. The reply is hijacked only when frames are sent; for
 * any other result the caller answers.
 */
export function resumeStream (
  reply: FastifyReply,
  streamId: string,
  afterSeq: number,
  scope: string,
  open: OpenStreams,
  heartbeatMs: number
): Promise<ResumeResult> {
  const running = open.resumable(streamId, scope)
  if (running === undefined) return replayEnded(reply, open.store, streamId, scope, afterSeq)
  const connection = new SseConnection(reply.raw, {
    heartbeatMs,
    headers: reply.getHeaders() as Record<string, string>,
    owner: running,
    onOpen: () => { reply.hijack() },
  })
  return running.attach(connection, afterSeq)
}
