// What `streamCommand<typeof Command>` reads from a server's command class,
// at the type level only: the client imports no server code at run time.
import type { resultType, ResultInfo } from '../messages/result-type.js'

/**
 * The plain data of a message class (what its constructor takes, what goes
 * over the wire), or of a TypeBox schema.
 * @example
 * import type { ProcessOrders, OrderProcessed } from '../server/messages.js'
 * type Body = DataOf<typeof ProcessOrders> // { orderIds: string[] }
 * const rows: Array<DataOf<typeof OrderProcessed>> = []
 */
export type DataOf<C> =
  C extends abstract new (data: infer D, ...rest: never[]) => object ? D
    : C extends { readonly static: infer D } ? D
      : never

/** A request (command) class of the server, as `typeof X`. */
type CommandClass = abstract new (data: never) => { readonly [resultType]: ResultInfo }

/**
 * The data of the `progress` frames of a command class's stream: the plain
 * data of its `result` (never the class: `toJSON()` and getters do not cross
 * the wire). `unknown` for a command declared without `result`.
 * @example
 * const last: ResultDataOf<typeof ProcessOrders> | undefined = undefined
 */
export type ResultDataOf<C> =
  C extends abstract new (data: never) => { readonly [resultType]: ResultInfo<true, unknown, infer D> } ? D : unknown

/** The `body` `streamCommand<T>` takes: a command class's data, else anything. */
export type BodyOf<T> = T extends CommandClass ? DataOf<T> : unknown

/** The `progress` data `streamCommand<T>` yields: a command class's result data, else `T` itself. */
export type ProgressOf<T> = T extends CommandClass ? ResultDataOf<T> : T
