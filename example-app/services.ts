import { setTimeout as delay } from 'node:timers/promises'

/** What the order service knows about an order once it is processed. */
export interface ProcessedOrder {
  readonly orderId: string
  readonly customerId: string
  readonly total: number
  readonly items: number
  readonly category: string
}

/**
 * A stand-in for a real order backend. Registered as an Awilix singleton,
 * so every stream shares it. Each order takes `orderDelayMs` of simulated
 * work; the wait honours the stream's abort signal, so a client that leaves
 * stops the work at once instead of after the delay.
 */
export class OrderService {
  readonly #delayMs: number

  constructor ({ orderDelayMs }: { orderDelayMs: number }) {
    this.#delayMs = orderDelayMs
  }

  async process (orderId: string, { signal }: { signal: AbortSignal }): Promise<ProcessedOrder> {
    // Rejects with an AbortError as soon as `signal` aborts.
    await delay(this.#delayMs, undefined, { signal })
    return {
      orderId,
      customerId: `customer_${orderId}`,
      total: 100 + orderId.length * 10,
      items: 1 + (orderId.length % 5),
      category: 'electronics',
    }
  }
}

/** In-memory analytics, fed by `OrderAnalyticsHandler`. */
export class AnalyticsService {
  /** Every `(orderId, category)` recorded, in order. */
  readonly recorded: Array<{ readonly orderId: string, readonly category: string }> = []

  record (orderId: string, category: string): void {
    this.recorded.push({ orderId, category })
  }
}
