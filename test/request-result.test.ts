// A command that names its result (`Request(schema, { result })`): the route
// needs no `response`, its frames are serialised and documented by the
// result, and an item that does not match is logged with the route, the
// schema and the failing field.
import swagger from '@fastify/swagger'
import { Type } from '@sinclair/typebox'
import Fastify from 'fastify'
import t from 'tap'
import fastifyCqrsStream, { Request, Response, StreamingRequestHandler } from '../src/index.js'

class CountResult extends Response(Type.Object({ n: Type.Integer() })) {}
class Count extends Request(Type.Object({ to: Type.Integer({ minimum: 0 }) }), { result: CountResult }) {}
class CountHandler extends StreamingRequestHandler<Count> {
  async * handle (command: Count) {
    // An extra field the result schema does not have: serialised away.
    for (let n = 1; n <= command.to; n++) yield Object.assign(new CountResult({ n }), { secret: 'x' })
  }
}

const Line = Type.Object({ row: Type.Integer(), text: Type.String() }, { $id: 'CsvLine' })
class ImportCsv extends Request(Type.Object({ rows: Type.Integer() }), { result: Line }) {}
class ImportHandler extends StreamingRequestHandler<ImportCsv> {
  async * handle (command: ImportCsv) {
    for (let row = 1; row <= command.rows; row++) {
      // The third row breaks the schema, as a bug would (the cast hides it from tsc).
      yield (row === 3 ? { row: 'three', text: 'c' } : { row, text: String(row) }) as { row: number, text: string }
    }
  }
}

class Untyped extends Request(Type.Object({})) {}
class UntypedHandler extends StreamingRequestHandler<Untyped> {
  async * handle () { yield { free: 'form' } }
}

interface Entry { level: number, msg: string, err?: { code?: string, message?: string } }

async function app (t: { teardown (fn: () => unknown): void }) {
  const logs: Entry[] = []
  const server = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { logs.push(JSON.parse(line) as Entry) } } } })
  t.teardown(() => server.close())
  await server.register(fastifyCqrsStream, {
    requests: (map) => map.bind(Count, CountHandler).bind(ImportCsv, ImportHandler).bind(Untyped, UntypedHandler),
    heartbeatMs: 0,
  })
  return { server, logs }
}

function datas (body: string): unknown[] {
  return body.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)) as unknown)
}

t.test('the class keeps its result; a result that is neither a Response class nor a schema is refused', async (t) => {
  t.equal(Count.result, CountResult)
  t.equal(ImportCsv.result, Line)
  t.equal(Untyped.result, undefined)
  for (const [options, message] of [
    [{ result: 1 }, /"result" must be a class made by Response\(\) or a TypeBox schema/],
    [{ result: class {} }, /"result" must be a class made by Response\(\)/],
    [{ result: [] }, /"result" must be a class made by Response\(\)/],
    [{}, /"result" must be a class made by Response\(\)/],
    ['CountResult', /"Request\(\) options" must be an object \{ result \}/],
  ] as const) {
    t.throws(() => Request(Type.Object({}), options as never), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message }, JSON.stringify(options))
  }
})

t.test('streamRoute takes the serialiser from the result class: no response option', async (t) => {
  const { server } = await app(t)
  server.streamRoute({ method: 'POST', url: '/count', request: Count })
  const res = await server.inject({ method: 'POST', url: '/count', payload: { to: 2 } })
  t.equal(res.statusCode, 200)
  t.match(datas(res.body), [{ type: 'start' }, { type: 'progress', data: { n: 1 } }, { type: 'progress', data: { n: 2 } }, { type: 'complete' }])
  t.notMatch(res.body, /secret/, 'fields outside the result schema are not sent')
})

t.test('a bare TypeBox schema as the result serialises plain data', async (t) => {
  const { server } = await app(t)
  server.streamRoute({ method: 'GET', url: '/import', request: ImportCsv })
  const res = await server.inject({ method: 'GET', url: '/import?rows=2' })
  t.same(datas(res.body).slice(1, 3), [{ type: 'progress', data: { row: 1, text: '1' } }, { type: 'progress', data: { row: 2, text: '2' } }])
})

t.test('a response other than the command\'s result is refused; the result itself is accepted', async (t) => {
  const { server } = await app(t)
  t.throws(() => server.streamRoute({ method: 'POST', url: '/a', request: Count, response: Response(Type.Object({ n: Type.Integer() })) as never }), {
    code: 'FST_ERR_CQRS_STREAM_INVALID_ROUTE',
    message: 'fastify-cqrs-stream: streamRoute option "response" is not the result of "Count": leave it out, its result serialises the frames.',
  })
  t.throws(() => server.streamRoute({ method: 'POST', url: '/b', request: ImportCsv, response: CountResult as never }), { code: 'FST_ERR_CQRS_STREAM_INVALID_ROUTE' })
  server.streamRoute({ method: 'POST', url: '/c', request: Count, response: CountResult })
  t.equal((await server.inject({ method: 'POST', url: '/c', payload: { to: 1 } })).statusCode, 200)
})

t.test('an item that does not match the result: the log names the route, the schema and the field; the client gets a generic error', async (t) => {
  const { server, logs } = await app(t)
  await server.register(async (scoped) => {
    scoped.streamRoute({ method: 'POST', url: '/import', request: ImportCsv })
  }, { prefix: '/v1' })
  server.streamRoute({ method: 'POST', url: '/count', request: Count })
  const res = await server.inject({ method: 'POST', url: '/v1/import', payload: { rows: 4 } })
  const frames = datas(res.body)
  t.equal(frames.length, 4, 'start, two progress frames, error')
  t.same(frames[3], {
    type: 'error',
    error: { code: 'FST_ERR_CQRS_STREAM_SERIALIZATION', message: 'fastify-cqrs-stream: the server could not send a result. The server log has the details.' },
  })
  t.equal(logs.length, 1)
  t.equal(logs[0]!.err?.code, 'FST_ERR_CQRS_STREAM_SERIALIZATION')
  t.match(logs[0]!.err?.message, /^fastify-cqrs-stream: route POST \/v1\/import yielded an item that does not match CsvLine: \/row must be integer: /)

  // A missing required field, in a class result.
  class Broken extends StreamingRequestHandler<Count> {
    async * handle () { yield {} as CountResult }
  }
  const other = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { logs.push(JSON.parse(line) as Entry) } } } })
  t.teardown(() => other.close())
  await other.register(fastifyCqrsStream, { requests: (map) => map.bind(Count, Broken), heartbeatMs: 0 })
  other.streamRoute({ method: 'POST', url: '/count', request: Count })
  await other.inject({ method: 'POST', url: '/count', payload: { to: 1 } })
  t.match(logs[1]!.err?.message, /^fastify-cqrs-stream: route POST \/count yielded an item that does not match CountResult: value must have required property 'n': /)
})

t.test('the result documents the frames in OpenAPI', async (t) => {
  const { server } = await app(t)
  await server.register(swagger, { openapi: { info: { title: 't', version: '1' } } })
  server.streamRoute({ method: 'POST', url: '/count', request: Count })
  server.streamRoute({ method: 'POST', url: '/untyped', request: Untyped })
  await server.ready()
  type Progress = { oneOf: Array<{ properties: { data?: unknown } }> }
  const paths = (server.swagger() as unknown as { paths: Record<string, { post: { responses: Record<string, { content?: Record<string, { schema: Progress }> }> } }> }).paths
  const frame = paths['/count']!.post.responses['200']!.content!['text/event-stream']!.schema
  t.match(frame.oneOf[1]!.properties.data, { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } })
  const untyped = paths['/untyped']!.post.responses['200']!.content!['text/event-stream']!.schema
  t.same(untyped.oneOf[1]!.properties.data, {}, 'without result or response, any data')
})

t.test('without result, a command streams whatever its handler yields, as before', async (t) => {
  const { server } = await app(t)
  server.streamRoute({ method: 'POST', url: '/untyped', request: Untyped })
  const res = await server.inject({ method: 'POST', url: '/untyped', payload: {} })
  t.match(datas(res.body)[1], { type: 'progress', data: { free: 'form' } })
})

t.test('an item that matches but cannot be JSON, and results named by title or by nothing', async (t) => {
  const Titled = Type.Object({ value: Type.Unknown() }, { title: 'Measurement' })
  class Measure extends Request(Type.Object({}), { result: Titled }) {}
  class MeasureHandler extends StreamingRequestHandler<Measure> {
    // A BigInt matches Type.Unknown() but JSON has no BigInt.
    async * handle () { yield { value: 1n } }
  }
  const Anonymous = Type.Object({ n: Type.Integer() })
  class Plain extends Request(Type.Object({}), { result: Anonymous }) {}
  class PlainHandler extends StreamingRequestHandler<Plain> {
    async * handle () { yield {} as { n: number } }
  }
  const logs: Entry[] = []
  const server = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { logs.push(JSON.parse(line) as Entry) } } } })
  t.teardown(() => server.close())
  await server.register(fastifyCqrsStream, { requests: (map) => map.bind(Measure, MeasureHandler).bind(Plain, PlainHandler), heartbeatMs: 0 })
  server.streamRoute({ method: 'POST', url: '/measure', request: Measure })
  server.streamRoute({ method: 'POST', url: '/plain', request: Plain })
  const measured = datas((await server.inject({ method: 'POST', url: '/measure', payload: {} })).body)
  t.match(measured.at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_SERIALIZATION' } })
  t.match(logs[0]!.err?.message, /^fastify-cqrs-stream: route POST \/measure yielded an item that matches Measurement but cannot be serialised to JSON: .*BigInt/)
  await server.inject({ method: 'POST', url: '/plain', payload: {} })
  t.match(logs[1]!.err?.message, /^fastify-cqrs-stream: route POST \/plain yielded an item that does not match the result schema of Plain: value must have required property 'n'/)
})
