import type { Static, TObject } from '@sinclair/typebox'
import { parseMessage, plainData, type MessageClass } from './message.js'

const kRequest = Symbol.for('fastify-cqrs-stream.request')

/** The instance side of every request (command) class. */
export abstract class RequestMessage {
  // Type-only brand: no other kind of message (same toJSON shape) fits where a request is expected.
  declare private readonly fastifyCqrsStreamRequest: true
  /** @internal brand checked by `RequestMap.bind`. */
  static readonly [kRequest] = true
  /** Plain data, as sent over the wire. */
  toJSON (): Record<string, unknown> { return plainData(this) }
}

/** A request class made by {@link Request}: `new X(data)`, `X.schema`, `X.parse(value)`. */
export interface RequestClass<S extends TObject = TObject, I extends RequestMessage = RequestMessage & Static<S>>
  extends MessageClass<S, I> {
  new (data: Static<S>): I
}

/**
 * Makes a request (command) class from a TypeBox object schema. One
 * definition gives the binding key, validation, static types and OpenAPI.
 * @example
 * class ProcessOrdersCommand extends Request(Type.Object({
 *   orderIds: Type.Array(Type.String(), { minItems: 1 }),
 * })) {}
 * const command = new ProcessOrdersCommand({ orderIds: ['a'] })
 */
export function Request<S extends TObject> (schema: S): RequestClass<S> {
  return class extends RequestMessage {
    static readonly schema = schema
    static readonly parse = parseMessage
    constructor (data: Static<S>) {
      super()
      Object.assign(this, data)
    }
  } as unknown as RequestClass<S>
}

/** True when `value` is a class made by {@link Request}. */
export function isRequestClass (value: unknown): value is RequestClass {
  return typeof value === 'function' && (value as unknown as Record<symbol, unknown>)[kRequest] === true
}
