import type { Static, TObject } from '@sinclair/typebox'
import { InvalidMessageError } from '../errors.js'
import { describeErrors, validatorFor } from './validator.js'

/** What every message class (request, response, event) has in common. */
export interface MessageClass<S extends TObject = TObject, I = unknown> {
  /** The TypeBox schema the class was made from: use it in route schemas and OpenAPI. */
  readonly schema: S
  /**
   * Validate unknown data against {@link MessageClass.schema} and build an
   * instance, or throw `FST_ERR_CQRS_STREAM_INVALID_MESSAGE`. Typed by the
   * class it is called on: `X.parse()` gives an `X`, subclass members included.
   * @example
   * const command = ProcessOrdersCommand.parse(JSON.parse(body))
   */
  parse<T extends I = I> (this: new (data: never) => T, value: unknown): T
  readonly name: string
}

/** The plain data of a message: its schema's static type. */
export type MessageData<S extends TObject> = Static<S>

/** Validates `value` against `cls.schema`, throwing a coded error on mismatch. */
export function assertMatches (cls: { readonly schema: TObject, readonly name: string }, value: unknown): void {
  const validate = validatorFor(cls.schema)
  if (!validate(value)) throw new InvalidMessageError(cls.name, describeErrors(validate))
}

/**
 * The shared `parse` of every message class: validate, then construct with
 * `this`, so a subclass parses to its own type.
 */
export function parseMessage<T> (this: { new (data: never): T, readonly schema: TObject, readonly name: string }, value: unknown): T {
  assertMatches(this, value)
  return new this(value as never)
}

/**
 * The class a message was made by. Read from the prototype: message data is
 * copied onto the instance, so a client-sent `constructor` field would
 * otherwise redirect handler lookups.
 */
export function messageClassOf (message: object): Function {
  return (Object.getPrototypeOf(message) as { constructor: Function }).constructor
}

/** Own enumerable data of a message instance, as a new plain object. */
export function plainData (message: object): Record<string, unknown> {
  return { ...message }
}
