// Type-only: nothing here exists at run time. A request instance carries, in
// its type alone, what its stream yields; `mediator.stream()`, handlers,
// `streamRoute` and the browser client read it from there. Its own file, with
// no imports, so the client's declarations can use it without pulling in the
// server's.

/** The key of {@link ResultInfo} on a request's type. Never set at run time. */
export declare const resultType: unique symbol

/**
 * What a request class streams, recorded in its instances' type by
 * `Request(schema, { result })`.
 */
export interface ResultInfo<Typed extends boolean = boolean, Value = unknown, Data = unknown, Spec = unknown> {
  /** False for a request declared without `result`: its handler may yield anything. */
  readonly typed: Typed
  /** What the handler yields and `mediator.stream()` gives: the result class's instance, or the schema's data. */
  readonly value: Value
  /** The JSON of a `progress` frame's `data`, as a client receives it. */
  readonly data: Data
  /** The `result` the class was declared with. */
  readonly spec: Spec
}

/** The type side of a request declared with `result`. */
export interface TypedResult<Value, Data, Spec> {
  readonly [resultType]: ResultInfo<true, Value, Data, Spec>
}

/** The type side of a request declared without `result`. */
export interface UntypedResult {
  readonly [resultType]: ResultInfo<false>
}
