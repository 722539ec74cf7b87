import t from 'tap'
import * as errors from '../src/errors.js'

t.test('every error has a package code and a message that names the package', async (t) => {
  for (const [name, ErrorType] of Object.entries(errors)) {
    const error = new ErrorType('a', 'b', 'c')
    t.match(error.code, /^FST_ERR_CQRS_STREAM_[A-Z_]+$/, `${name} code`)
    t.match(error.message, /^fastify-cqrs-stream: /, `${name} message`)
    // Only ever an error frame, never an HTTP answer: no status.
    if (name === 'OwnerLostError') t.equal(error.statusCode, undefined, `${name} has no status`)
    else t.type(error.statusCode, 'number', `${name} status`)
  }
})
