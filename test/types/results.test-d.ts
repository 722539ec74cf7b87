// Type tests of commands that name their result (`Request(schema, { result })`):
// one class declaration types the handler, the mediator, the route and the
// browser client, with no generic anywhere (see expect.ts).
import Fastify from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import {
  bootstrapStreaming, Request, Response, StreamingRequestHandler,
  type DataOf, type ResultOf, type StreamContext,
} from '../../src/index.js'
import { streamCommand, type ResultDataOf, type StreamFrame } from '../../src/client/index.js'
import { expectExact, expectTrue, use, type Equal } from './expect.js'

class CountResult extends Response(Type.Object({ n: Type.Integer(), label: Type.Optional(Type.String()) })) {
  get doubled (): number { return this.n * 2 }
}
class Count extends Request(Type.Object({ to: Type.Integer() }), { result: CountResult }) {}

// A bare TypeBox schema as the result: handlers yield its plain data.
const Line = Type.Object({ row: Type.Integer(), text: Type.String() })
class ImportCsv extends Request(Type.Object({ file: Type.String() }), { result: Line }) {}

// Declared without result: as before, the result is the caller's to state.
class Legacy extends Request(Type.Object({ id: Type.String() })) {}
class Other extends Response(Type.Object({ other: Type.Boolean() })) {}

// The static side keeps what was given.
expectTrue<Equal<typeof Count.result, typeof CountResult>>()
expectTrue<Equal<typeof ImportCsv.result, typeof Line>>()
expectTrue<Equal<typeof Legacy.result, undefined>>()
expectTrue<Equal<ResultOf<Count>, CountResult>>()
expectTrue<Equal<ResultOf<ImportCsv>, Static<typeof Line>>>()
expectTrue<Equal<ResultOf<Legacy>, unknown>>()

// 1. Handlers take the result type from the command.
class CountHandler extends StreamingRequestHandler<Count> {
  async * handle (command: Count, { signal }: StreamContext) {
    for (let n = 1; n <= command.to && !signal.aborted; n++) yield new CountResult({ n })
  }
}
class ImportHandler extends StreamingRequestHandler<ImportCsv> {
  async * handle (command: ImportCsv) { yield { row: 1, text: command.file } }
}
class YieldsPlainData extends StreamingRequestHandler<Count> {
  // @ts-expect-error a Response result is yielded as its instances, not plain data
  async * handle () { yield { n: 1 } }
}
class YieldsAnotherResult extends StreamingRequestHandler<Count> {
  // @ts-expect-error Count streams CountResult, not Other
  async * handle () { yield new Other({ other: true }) }
}
class YieldsNumbers extends StreamingRequestHandler<ImportCsv> {
  // @ts-expect-error ImportCsv streams its Line data
  async * handle () { yield 1 }
}
// @ts-expect-error the second type argument must be the command's result
class StatesAnotherResult extends StreamingRequestHandler<Count, Other> {
  async * handle () { yield new Other({ other: true }) }
}
// A legacy handler may state any result, as before.
class LegacyHandler extends StreamingRequestHandler<Legacy, Other> {
  async * handle () { yield new Other({ other: false }) }
}
class LegacyUntyped extends StreamingRequestHandler<Legacy> {
  async * handle () { yield 'anything' }
}

// …and so does bind(): a handler of another result does not bind.
class LooseHandler extends StreamingRequestHandler {
  async * handle () { yield 1 }
}
const mediator = bootstrapStreaming({
  requests: (map) => map.bind(Count, CountHandler).bind(ImportCsv, ImportHandler).bind(Legacy, LegacyHandler),
})
bootstrapStreaming({
  // @ts-expect-error LooseHandler yields numbers, Count streams CountResult
  requests: (map) => map.bind(Count, LooseHandler),
})
bootstrapStreaming({ requests: (map) => map.bind(Legacy, LooseHandler) })

// 1. mediator.stream() gives the result type, no generic.
export async function consume (): Promise<void> {
  for await (const r of mediator.stream(new Count({ to: 3 }))) {
    expectExact<CountResult>()(r)
    expectExact<number>()(r.doubled)
    // @ts-expect-error no such field on the result
    use(r.missing)
  }
  for await (const line of mediator.stream(new ImportCsv({ file: 'a.csv' }))) {
    expectExact<{ row: number, text: string }>()(line)
  }
  for await (const item of mediator.stream(new Legacy({ id: 'a' }))) expectExact<unknown>()(item)
  for await (const item of mediator.stream<Other>(new Legacy({ id: 'a' }))) expectExact<Other>()(item)
  // @ts-expect-error a command with a result takes no other result type
  use(mediator.stream<Other>(new Count({ to: 1 })))
}

// 1. streamRoute needs no response; a wrong one does not compile.
export function routes (): void {
  const app = Fastify()
  app.streamRoute({ method: 'POST', url: '/count', request: Count })
  app.streamRoute({ method: 'POST', url: '/count2', request: Count, response: CountResult })
  app.streamRoute({ method: 'GET', url: '/import', request: ImportCsv })
  // @ts-expect-error Count's result is CountResult, not Other
  app.streamRoute({ method: 'POST', url: '/count3', request: Count, response: Other })
  // @ts-expect-error ImportCsv's result is a schema: no response class
  app.streamRoute({ method: 'POST', url: '/import2', request: ImportCsv, response: Other })
  // A command without result still takes any response class, or none.
  app.streamRoute({ method: 'POST', url: '/legacy', request: Legacy, response: Other })
  app.streamRoute({ method: 'POST', url: '/legacy2', request: Legacy })
}

// 2. The client follows the command: body and progress data, no class on the wire.
export async function client (): Promise<void> {
  for await (const frame of streamCommand<typeof Count>('/count', { body: { to: 3 }, baseUrl: 'http://localhost:3000' })) {
    expectTrue<Equal<typeof frame, StreamFrame<{ n: number, label?: string }>>>()
    if (frame.type === 'progress') {
      expectExact<number>()(frame.data.n)
      // @ts-expect-error progress data is plain JSON: no toJSON()
      use(frame.data.toJSON())
      // @ts-expect-error nor the class's getters
      use(frame.data.doubled)
    }
  }
  // @ts-expect-error a wrong field of the command
  use(streamCommand<typeof Count>('/count', { body: { from: 3 } }))
  // @ts-expect-error a wrong type of a field
  use(streamCommand<typeof Count>('/count', { body: { to: 'three' } }))
  for await (const frame of streamCommand<typeof ImportCsv>('/import', { body: { file: 'a.csv' } })) {
    if (frame.type === 'progress') expectExact<{ row: number, text: string }>()(frame.data)
  }
  // A command class without result: a typed body, unknown data.
  for await (const frame of streamCommand<typeof Legacy>('/legacy', { body: { id: 'a' } })) {
    if (frame.type === 'progress') expectExact<unknown>()(frame.data)
  }
  // A plain type argument is the progress data, as before.
  for await (const frame of streamCommand<{ n: number }>('/count', { body: { anything: true } })) {
    if (frame.type === 'progress') expectExact<number>()(frame.data.n)
  }
  use(streamCommand('/x', { baseUrl: new URL('http://localhost') }))
  // @ts-expect-error baseUrl is a string or URL
  use(streamCommand('/x', { baseUrl: 3000 }))
}

// DataOf and ResultDataOf for the cases in between.
expectTrue<Equal<DataOf<typeof Count>, { to: number }>>()
expectTrue<Equal<DataOf<typeof CountResult>, { n: number, label?: string }>>()
expectTrue<Equal<DataOf<typeof Line>, { row: number, text: string }>>()
expectTrue<Equal<ResultDataOf<typeof Count>, { n: number, label?: string }>>()
expectTrue<Equal<ResultDataOf<typeof ImportCsv>, { row: number, text: string }>>()
expectTrue<Equal<ResultDataOf<typeof Legacy>, unknown>>()

export { YieldsPlainData, YieldsAnotherResult, YieldsNumbers, StatesAnotherResult, LegacyUntyped }
