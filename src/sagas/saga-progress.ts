import { Type, type Static } from '@sinclair/typebox'

/**
 * The `progress` frame of a saga, one per step: `done` after its act (with
 * its result), then, when a later step fails or the saga is cancelled,
 * `compensating` and `compensated` for each completed step, last one first.
 * Give it as the command's `result` for a typed client.
 * @example
 * class BookTripCommand extends Request(Type.Object({ tripId: Type.String() }), { result: SagaProgressSchema }) {}
 */
export const SagaProgressSchema = Type.Object({
  step: Type.String(),
  status: Type.Union([Type.Literal('done'), Type.Literal('compensating'), Type.Literal('compensated')]),
  result: Type.Optional(Type.Unknown()),
})

/** See {@link SagaProgressSchema}. */
export type SagaProgress = Static<typeof SagaProgressSchema>
