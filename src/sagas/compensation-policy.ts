/** How a failing compensation is retried before the saga is stored as `failed-compensation`. */
export interface CompensationPolicy {
  /** Tries per compensation, the first included. @default 3 */
  readonly attempts: number
  /** The wait before the second try, doubled per try. @default 100 */
  readonly delayMs: number
  /** The longest wait between tries. @default 5000 */
  readonly maxDelayMs: number
}

export const defaultCompensation: CompensationPolicy = Object.freeze({ attempts: 3, delayMs: 100, maxDelayMs: 5000 })

/** The wait after failed try `attempt` (1-based). */
export function retryDelay (policy: CompensationPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.delayMs * 2 ** (attempt - 1))
}
