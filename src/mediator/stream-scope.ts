import { asValue, type AwilixContainer, type Resolver } from 'awilix'
import type { StreamContext } from '../handlers/stream-context.js'
import { resolverOf } from './class-resolvers.js'

type ProxyTrap = keyof ProxyHandler<object>
type Forwarder = (scope: StreamScope, ...args: unknown[]) => unknown

// The real scope's members, each read for a StreamScope (the receiver),
// which creates that scope on first use. It is the prototype of
// StreamScope.prototype: whatever a resolver asks of the container besides
// `options` and `cradle` (`resolve` in CLASSIC mode, `registrations` for an
// injector, anything an injector uses) is the real scope's.
const realScope = new Proxy({}, {
  get: (_target, name, scope: StreamScope) => scope.materialize()[name as keyof AwilixContainer],
})

// Every trap of the cradle a handler gets goes to the real scope's cradle:
// one generic forwarder per trap, made once.
const forwarders: Partial<Record<ProxyTrap, Forwarder>> = {}
const deferredCradle: ProxyHandler<StreamScope> = new Proxy({}, {
  get: (_handler, trap: ProxyTrap) => (forwarders[trap] ??= (scope, ...args) =>
    (Reflect[trap] as (...a: unknown[]) => unknown)(Reflect.get(realScope, 'cradle', scope), ...args)),
})

/**
 * A stream's Awilix scope, created only when something is resolved from it.
 * Most of a scope's cost (`createScope()`, registering the stream's values,
 * `dispose()`, and the garbage of a container object with a cradle Proxy
 * and some thirty closures: 25–30 µs per HTTP stream in the setup bench) is
 * spent on streams whose handlers resolve nothing. A handler is built
 * against this object, which stands in for the container: `options` is the
 * root's (the injection mode is read from it), `cradle` resolves through the
 * real scope, and every other member is the real scope's.
 */
export class StreamScope {
  /** What Awilix resolvers read the injection mode from: the scope's are the root's. */
  readonly options: AwilixContainer['options']
  /** Stands in for the scope's cradle: the first property read creates the scope. */
  readonly cradle: object
  readonly #root: AwilixContainer
  readonly #context: StreamContext
  readonly #values: Readonly<Record<string, unknown>> | undefined
  #scope: AwilixContainer | undefined

  constructor (root: AwilixContainer, context: StreamContext, values: Readonly<Record<string, unknown>> | undefined) {
    this.options = root.options
    this.#root = root
    this.#context = context
    this.#values = values
    this.cradle = new Proxy(this, deferredCradle)
  }

  /**
   * Builds `Class`, injecting its dependencies from this scope. Not named
   * `build`: the container's own members must stay the real scope's.
   */
  instantiate<T> (Class: abstract new (...args: never[]) => T): T {
    return resolverOf(Class).resolve(this as unknown as AwilixContainer)
  }

  /** The registration `name` of the real scope (created now), or undefined when there is none. */
  resolveIfRegistered<T> (name: string): T | undefined {
    const scope = this.materialize()
    return scope.hasRegistration(name) ? scope.resolve<T>(name) : undefined
  }

  /** @internal the real scope, created and given the stream's registrations on first call. */
  materialize (): AwilixContainer {
    if (this.#scope !== undefined) return this.#scope
    const scope = this.#root.createScope()
    const context = this.#context
    const registrations: Record<string, Resolver<unknown>> = {}
    const values = this.#values
    if (values !== undefined) {
      for (const key of Object.keys(values)) registrations[key] = asValue(values[key])
    }
    // Registered last: caller values cannot replace the stream's own.
    registrations['signal'] = { resolve: () => context.signal, isLeakSafe: true }
    registrations['streamId'] = asValue(context.streamId)
    scope.register(registrations)
    this.#scope = scope
    return scope
  }

  /** Disposes the real scope, if one was made. */
  close (): Promise<void> | undefined {
    return this.#scope?.dispose()
  }
}

Object.setPrototypeOf(StreamScope.prototype, realScope)
