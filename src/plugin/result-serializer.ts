import fastJsonStringify from 'fast-json-stringify'
import type { TSchema } from '@sinclair/typebox'
import { SerializationError } from '../errors.js'
import { describeErrors, validatorFor } from '../messages/validator.js'
import type { Serializer } from '../sse/frame-encoder.js'

/**
 * The `progress` serialiser of a route: fast-json-stringify compiled from
 * the result schema. Its own errors say neither the route nor the field
 * ("undefined is required!"), so a failing item is validated against the
 * schema, off the hot path, to name both in the error the log gets.
 */
export function resultSerializer (schema: TSchema, route: string, schemaName: string): Serializer<unknown> {
  const stringify = fastJsonStringify(schema as unknown as Parameters<typeof fastJsonStringify>[0]) as Serializer<unknown>
  return (item) => {
    try {
      return stringify(item)
    } catch (error) {
      // pino appends the cause's own message to the log line.
      const validate = validatorFor(schema)
      const what = validate(item)
        ? `an item that matches ${schemaName} but cannot be serialised to JSON`
        : `an item that does not match ${schemaName}: ${describeErrors(validate)}`
      throw new SerializationError(`route ${route} yielded ${what}`, { cause: error })
    }
  }
}
