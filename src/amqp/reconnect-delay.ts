/**
 * The wait before reconnect attempt `attempt` (1, 2, …): `initialMs` doubled
 * per earlier attempt, capped at `maxMs`, then drawn between its half and its
 * whole ("equal jitter"), so clients that lost the same broker do not all
 * come back at the same instant.
 */
export function reconnectDelay (attempt: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** (attempt - 1))
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2)
}
