// Compile-time assertions for the type tests. Nothing here runs: the files
// under test/types/ are checked by `npm run typecheck` (tsc) only, and every
// `// @ts-expect-error` line in them must fail to compile, or tsc reports the
// directive as unused. test/package.test.ts checks them again against the
// declarations in the packed tarball.

/** True when A and B are the same type (not merely assignable either way). */
export type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false

/** Compiles only when its type argument is `true`: `expectTrue<Equal<A, B>>()`. */
export function expectTrue<T extends true> (): T | undefined { return undefined }

/**
 * Compiles only when `value`'s type is exactly `Expected`:
 * `expectExact<ProcessOrders>()(ProcessOrders.parse(data))`.
 */
export function expectExact<Expected> () {
  return <Actual>(value: Actual, ...typesDiffer: Equal<Actual, Expected> extends true ? [] : [never]): Actual =>
    typesDiffer.length === 0 ? value : value
}

/** Compiles only when `value` is assignable to T. */
export function expectAssignable<T> (value: T): T { return value }

/** Uses values, so a line can hold an expression that must (not) compile. */
export function use (...values: unknown[]): number { return values.length }
