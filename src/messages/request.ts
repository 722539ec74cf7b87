import type { Static, TObject, TSchema } from '@sinclair/typebox'
import { InvalidOptionError } from '../errors.js'
import { parseMessage, plainData, type MessageClass } from './message.js'
import { isResponseClass, type ResponseMessage } from './response.js'
import type { resultType, ResultInfo, TypedResult, UntypedResult } from './result-type.js'

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

/**
 * A `Response` class (or a subclass of one) that a request can name as its
 * result.
 */
export type ResultClass = MessageClass<TObject, ResponseMessage> & (abstract new (data: never) => ResponseMessage)

/**
 * What `Request(schema, { result })` takes: a `Response` class (handlers
 * yield its instances) or a bare TypeBox schema (handlers yield its data).
 */
export type ResultSpec = ResultClass | TSchema

/** What a handler of a request with `result: R` yields. */
export type ResultValueOf<R> = R extends abstract new (data: never) => infer I ? I : R extends TSchema ? Static<R> : never

/** The JSON a client gets in the `progress` frames of a request with `result: R`. */
export type ResultJsonOf<R> = R extends ResultClass ? Static<R['schema']> : R extends TSchema ? Static<R> : never

/**
 * The result type of a request instance: what its handler yields and
 * `mediator.stream()` gives. `unknown` for a request declared without
 * `result`.
 * @example
 * class Count extends Request(Type.Object({ to: Type.Integer() }), { result: CountResult }) {}
 * type R = ResultOf<Count> // CountResult
 */
export type ResultOf<TRequest> = TRequest extends { readonly [resultType]: ResultInfo<true, infer V> } ? V : unknown

/** Options of {@link Request}. */
export interface RequestOptions<R extends ResultSpec> {
  /**
   * What the command streams: each `progress` frame's data. Handlers,
   * `mediator.stream()`, `streamRoute` (its serialiser and OpenAPI) and the
   * typed client all take their result type from it.
   */
  readonly result: R
}

/** A request class made by {@link Request}: `new X(data)`, `X.schema`, `X.parse(value)`. */
export interface RequestClass<S extends TObject = TObject, I extends RequestMessage = RequestMessage & Static<S>>
  extends MessageClass<S, I> {
  new (data: Static<S>): I
  /** The `result` given to {@link Request}, if any. */
  readonly result?: ResultSpec | undefined
}

/** A request class made by `Request(schema, { result })`. */
export interface TypedRequestClass<S extends TObject, R extends ResultSpec>
  extends RequestClass<S, RequestMessage & Static<S> & TypedResult<ResultValueOf<R>, ResultJsonOf<R>, R>> {
  readonly result: R
}

/** A request class made by `Request(schema)`, without a result. */
export interface UntypedRequestClass<S extends TObject> extends RequestClass<S, RequestMessage & Static<S> & UntypedResult> {
  readonly result: undefined
}

function resultOption (options: unknown): ResultSpec | undefined {
  if (options === undefined) return undefined
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('Request() options', 'must be an object { result }')
  const result = (options as { result?: unknown }).result
  if (isResponseClass(result) || (typeof result === 'object' && result !== null && !Array.isArray(result))) return result as ResultSpec
  throw new InvalidOptionError('result', 'must be a class made by Response() or a TypeBox schema')
}

/**
 * Makes a request (command) class from a TypeBox object schema. One
 * definition gives the binding key, validation, static types and OpenAPI.
 * With `result`, it also names what the command streams, and every type
 * after it follows: the handler's yields, `mediator.stream()`, the route's
 * frames and the typed client.
 * @example
 * class OrderProcessed extends Response(Type.Object({ orderId: Type.String() })) {}
 * class ProcessOrdersCommand extends Request(Type.Object({
 *   orderIds: Type.Array(Type.String(), { minItems: 1 }),
 * }), { result: OrderProcessed }) {}
 * const command = new ProcessOrdersCommand({ orderIds: ['a'] })
 */
export function Request<S extends TObject, R extends ResultSpec> (schema: S, options: RequestOptions<R>): TypedRequestClass<S, R>
export function Request<S extends TObject> (schema: S): UntypedRequestClass<S>
export function Request<S extends TObject> (schema: S, options?: RequestOptions<ResultSpec>): RequestClass<S> {
  const result = resultOption(options)
  return class extends RequestMessage {
    static readonly schema = schema
    static readonly parse = parseMessage
    static readonly result = result
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

/** The JSON schema of a result: a Response class's schema, or the schema itself. */
export function resultSchemaOf (result: ResultSpec | undefined): TSchema | undefined {
  return isResponseClass(result) ? result.schema : result
}
