import type { Static, TObject } from '@sinclair/typebox'
import { parseMessage, plainData, type MessageClass } from './message.js'

/** The instance side of every response (streamed result) class. */
export abstract class ResponseMessage {
  // Type-only brand: no other kind of message (same toJSON shape) fits where a response is expected.
  declare private readonly fastifyCqrsStreamResponse: true
  /** Plain data, as sent in a `progress` frame. */
  toJSON (): Record<string, unknown> { return plainData(this) }
}

/** A response class made by {@link Response}. */
export interface ResponseClass<S extends TObject = TObject, I extends ResponseMessage = ResponseMessage & Static<S>>
  extends MessageClass<S, I> {
  new (data: Static<S>): I
}

/**
 * Makes a response (streamed result) class from a TypeBox object schema.
 * Named as a command's result (`Request(schema, { result })`), it types the
 * handler, the mediator and the client, and its schema compiles the
 * serialiser of the route's `progress` frames.
 * @example
 * class OrderProcessedResult extends Response(Type.Object({
 *   orderId: Type.String(), status: Type.String(),
 * })) {}
 */
export function Response<S extends TObject> (schema: S): ResponseClass<S> {
  return class extends ResponseMessage {
    static readonly schema = schema
    static readonly parse = parseMessage
    constructor (data: Static<S>) {
      super()
      Object.assign(this, data)
    }
  } as unknown as ResponseClass<S>
}

/** True when `value` is a class made by {@link Response} (or a subclass of one). */
export function isResponseClass (value: unknown): value is MessageClass<TObject, ResponseMessage> & (abstract new (data: never) => ResponseMessage) {
  return typeof value === 'function' && value.prototype instanceof ResponseMessage
}
