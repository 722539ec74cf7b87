import { Ajv, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'
import type { TSchema } from '@sinclair/typebox'

// ajv-formats is CommonJS with a default export; under NodeNext the callable
// sits on `.default`.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default

// Ajv with the formats Fastify's own validator knows, so `X.parse()` accepts
// exactly what a route with the same schema accepts. Created on first use,
// never at import time.
let ajv: Ajv | undefined

function shared (): Ajv {
  if (ajv === undefined) {
    ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false, useDefaults: false })
    addFormats(ajv)
  }
  return ajv
}

const compiled = new WeakMap<TSchema, ValidateFunction>()

/** The compiled validator of a schema, cached per schema object. */
export function validatorFor (schema: TSchema): ValidateFunction {
  let validate = compiled.get(schema)
  if (validate === undefined) {
    validate = shared().compile(schema)
    compiled.set(schema, validate)
  }
  return validate
}

/** A short human-readable account of why the last validation failed. */
export function describeErrors (validate: ValidateFunction): string {
  const first = validate.errors?.[0]
  /* c8 ignore next -- ajv always sets errors after a failed validation */
  if (first === undefined) return 'does not match its schema'
  const where = first.instancePath === '' ? 'value' : first.instancePath
  /* c8 ignore next -- ajv (messages: true, its default) gives every error a message */
  return `${where} ${first.message ?? 'is invalid'}`
}
