/**
 * What a handler that builds more than itself (a saga builds its steps) gets
 * from its stream's scope, right after it was built.
 */
export interface HandlerScope {
  /** Builds `Class` with its dependencies from the stream's scope. */
  instantiate<T> (Class: abstract new (...args: never[]) => T): T
  /** The registration `name` of the stream's scope, or undefined when there is none. */
  resolveIfRegistered<T> (name: string): T | undefined
}

/** The method a handler defines to receive its {@link HandlerScope}. */
export const useHandlerScope: unique symbol = Symbol('fastify-cqrs-stream:useHandlerScope')

/** Hands `scope` to `handler` when it asks for it. */
export function giveHandlerScope<T> (handler: T, scope: HandlerScope): T {
  const use = (handler as { [useHandlerScope]?: (scope: HandlerScope) => void })[useHandlerScope]
  if (typeof use === 'function') use.call(handler, scope)
  return handler
}
