// The workload every variant streams: a start frame, N progress frames of the
// ~130-byte JSON result of the orders example, and a complete frame. Shared by
// our server, the anchors and the event pipeline so they all send the same
// items. Plain JavaScript, like every process the bench measures: tsx's
// transform would wrap each closure in a `__name()` call, costing CPU and a
// property store per closure that shipped code does not have.
import { Type } from '@sinclair/typebox'

export const PROCESSED_AT = '2026-11-26T05:00:00.000Z'

/** The result's schema: our `Response` class and the plain JSON route compile their serialisers from it. */
export const resultSchema = Type.Object({
  orderId: Type.String(),
  status: Type.String(),
  itemsCount: Type.Integer(),
  processedAt: Type.String({ format: 'date-time' }),
})

/** Item `i` of a stream. */
export function resultOf (i) {
  return { orderId: `order-${i}`, status: 'processed', itemsCount: 3, processedAt: PROCESSED_AT }
}

/**
 * An item stamped with the monotonic clock (ns) in its orderId. Client and
 * server run on the same machine, where `process.hrtime` reads one
 * CLOCK_MONOTONIC shared by every process, so the client can subtract.
 */
export function stampedResult () {
  return { orderId: `order-${process.hrtime.bigint()}`, status: 'processed', itemsCount: 3, processedAt: PROCESSED_AT }
}

/** An integer query parameter, with a default. */
export function intParam (url, name, fallback) {
  const value = new URL(url ?? '/', 'http://x').searchParams.get(name)
  return value === null ? fallback : Number(value)
}
