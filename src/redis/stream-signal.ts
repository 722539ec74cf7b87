import type { StreamSignal } from '../resume/stream-store.js'

const isId = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= 256

/** A signal as published by another instance, or undefined when it is not one. */
export function parseSignal (text: string): StreamSignal | undefined {
  let value: Partial<Record<string, unknown>>
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || !isId(value.streamId)) return undefined
  const { type, streamId, follower, seq } = value
  if (type === 'cancel' || type === 'taken') return { type, streamId }
  if (!isId(follower)) return undefined
  if (type === 'leave') return { type, streamId, follower }
  if (type === 'follow' && Number.isSafeInteger(seq) && (seq as number) >= -1) return { type, streamId, follower, seq: seq as number }
  return undefined
}
