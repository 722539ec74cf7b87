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
 * Given to `streamRoute({ response })`, its schema also compiles the
 * serialiser of the `progress` frames.
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
