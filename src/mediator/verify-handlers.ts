import type { AwilixContainer } from 'awilix'
import { MissingDependencyError } from '../errors.js'
import type { EventMap } from '../maps/event-map.js'
import type { RequestMap } from '../maps/request-map.js'
import { RunContext } from '../run/run-context.js'
import { StreamScope } from './stream-scope.js'

// Awilix's own message: "Could not resolve 'db'.\n\nResolution path: orders -> db".
const UNRESOLVED = /^Could not resolve '([^']*)'/
const PATH = /Resolution path: (.*)$/m

/**
 * The missing name of an Awilix resolution error, by name and message: the
 * app's container may come from another copy of awilix than ours, so
 * `instanceof` would miss it.
 */
function unresolved (error: unknown): { name: string, path: string } | undefined {
  if (!(error instanceof Error) || error.name !== 'AwilixResolutionError') return undefined
  const name = UNRESOLVED.exec(error.message)?.[1]
  /* c8 ignore next -- every AwilixResolutionError message starts so */
  if (name === undefined) return undefined
  /* c8 ignore next -- every AwilixResolutionError message ends with its resolution path */
  return { name, path: PATH.exec(error.message)?.[1] ?? name }
}

/**
 * The `streamId` of the throwaway scopes: a constructor that must not do
 * some work at boot can tell it is being verified.
 */
export const VERIFY_STREAM_ID = 'fastify-cqrs-stream:verify'

async function build (
  container: AwilixContainer, Class: abstract new (...args: never[]) => unknown, role: string,
  values: Readonly<Record<string, unknown>> | undefined
): Promise<void> {
  const scope = new StreamScope(container, new RunContext(VERIFY_STREAM_ID), values)
  try {
    scope.instantiate(Class)
  } catch (error) {
    const missing = unresolved(error)
    // Anything else a constructor throws may come from the placeholder
    // values (no request at boot): the first real stream will tell.
    if (missing !== undefined) throw new MissingDependencyError(Class.name, role, missing.name, `${Class.name} -> ${missing.path}`, { cause: error })
  } finally {
    await scope.close()
  }
}

/**
 * Builds every bound handler and event handler class once, each in a
 * throwaway scope (with the stream's own registrations: `signal`,
 * `streamId`, and `values`), so a registration missing from the container
 * fails now with `FST_ERR_CQRS_STREAM_MISSING_DEPENDENCY` instead of on a
 * client's first stream. It sees the dependencies a constructor resolves
 * (Awilix's PROXY mode resolves what the constructor destructures or reads;
 * CLASSIC mode resolves every parameter).
 */
export async function verifyHandlers (
  container: AwilixContainer, requests: RequestMap, events: EventMap, values?: Readonly<Record<string, unknown>>
): Promise<void> {
  for (const [request, handler] of requests.entries()) await build(container, handler, `the handler of ${request.name}`, values)
  for (const [event, handlers] of events.entries()) {
    for (const handler of handlers) await build(container, handler, `an event handler of ${event.name}`, values)
  }
}
