import { asClass, type Resolver } from 'awilix'

// asClass() parses the class's source for its dependencies on every call
// (about 9 µs for a small handler); one resolver per class is reused by
// every stream's scope instead.
const resolvers = new WeakMap<abstract new (...args: never[]) => unknown, Resolver<unknown>>()

/** The Awilix resolver that builds `Class`, made on first use. */
export function resolverOf<T> (Class: abstract new (...args: never[]) => T): Resolver<T> {
  let resolver = resolvers.get(Class)
  if (resolver === undefined) {
    resolver = asClass(Class as unknown as new () => T)
    resolvers.set(Class, resolver)
  }
  return resolver as Resolver<T>
}
