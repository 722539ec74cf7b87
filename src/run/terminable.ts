/**
 * A source that can be ended with a reason, not only returned: a mediator
 * stream then aborts its handler with that reason (a shutdown, a cancel)
 * instead of a generic abort.
 */
export const terminateSource: unique symbol = Symbol('fastify-cqrs-stream.terminate')

export interface Terminable {
  [terminateSource] (reason: unknown): Promise<void>
}

export function isTerminable (value: unknown): value is Terminable {
  return typeof (value as Partial<Terminable> | undefined)?.[terminateSource] === 'function'
}
