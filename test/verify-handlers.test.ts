// A registration missing from the container fails app.ready(), naming the
// class and the name, instead of a client's first stream (verifyHandlers).
import { Type } from '@sinclair/typebox'
import { asClass, asFunction, asValue, createContainer } from 'awilix'
import Fastify, { type FastifyRequest } from 'fastify'
import t from 'tap'
import fastifyCqrsStream, {
  bootstrapStreaming, DomainEvent, VERIFY_STREAM_ID, EventHandler, Request, Response, StreamingRequestHandler,
} from '../src/index.js'

const MISSING = 'FST_ERR_CQRS_STREAM_MISSING_DEPENDENCY'

class Row extends Response(Type.Object({ row: Type.Integer() })) {}
class Import extends Request(Type.Object({ file: Type.String() }), { result: Row }) {}
class Imported extends DomainEvent(Type.Object({ rows: Type.Integer() })) {}

class Database { query (): number { return 1 } }
class Csv {
  readonly #db: Database
  constructor ({ db }: { db: Database }) { this.#db = db }
  rows (): number { return this.#db.query() }
}

const built: string[] = []
class ImportHandler extends StreamingRequestHandler<Import> {
  readonly #csv: Csv
  constructor ({ csv, streamId }: { csv: Csv, streamId: string }) {
    super()
    this.#csv = csv
    built.push(streamId)
  }

  async * handle () {
    this.emit(new Imported({ rows: this.#csv.rows() }))
    yield new Row({ row: this.#csv.rows() })
  }
}
class ImportedHandler extends EventHandler<Imported> {
  constructor ({ mailer }: { mailer: { send: (n: number) => void } }) {
    super()
    this.send = (n) => { mailer.send(n) }
  }

  readonly send: (n: number) => void
  handle (event: Imported): void { this.send(event.rows) }
}

async function appWith (t: { teardown (fn: () => unknown): void }, registrations: Parameters<ReturnType<typeof createContainer>['register']>[0], options: { verifyHandlers?: boolean } = {}) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, {
    container: createContainer({ strict: true }).register(registrations),
    requests: (map) => map.bind(Import, ImportHandler),
    events: (map) => map.bind(Imported, ImportedHandler),
    heartbeatMs: 0,
    ...options,
  })
  app.streamRoute({ method: 'POST', url: '/import', request: Import })
  return app
}

const everything = {
  csv: asClass(Csv).singleton(),
  db: asClass(Database).singleton(),
  mailer: asValue({ send: () => {} }),
}

t.test('with every registration, ready() builds each handler once in a throwaway scope, then streams', async (t) => {
  built.length = 0
  const app = await appWith(t, everything)
  await app.ready()
  t.equal(VERIFY_STREAM_ID, 'fastify-cqrs-stream:verify')
  t.same(built, [VERIFY_STREAM_ID], 'built once, with the documented streamId')
  const res = await app.inject({ method: 'POST', url: '/import', payload: { file: 'a.csv' } })
  t.match(res.body, /"type":"progress","data":\{"row":1\}/)
  t.equal(built.length, 2, 'and once per stream')
})

t.test('a missing nested registration fails ready() with its name and path', async (t) => {
  const { db: _db, ...withoutDb } = everything
  const app = await appWith(t, withoutDb)
  const error = await app.ready().then(() => undefined, (error: unknown) => error) as { code?: string, message?: string, statusCode?: number, cause?: unknown }
  t.equal(error?.code, MISSING)
  t.equal(error?.message,
    'fastify-cqrs-stream: ImportHandler (the handler of Import) needs "db", which the container does not register ' +
    '(resolution path: ImportHandler -> csv -> db). Register it in the Awilix container before app.ready(), or set verifyHandlers: false to skip this check.')
  t.match(error?.cause, { name: 'AwilixResolutionError' }, 'the Awilix error is the cause')
})

t.test("a missing event handler's registration fails ready() too", async (t) => {
  const { mailer: _mailer, ...withoutMailer } = everything
  const app = await appWith(t, withoutMailer)
  await t.rejects(async () => { await app.ready() }, {
    code: MISSING,
    message: /^fastify-cqrs-stream: ImportedHandler \(an event handler of Imported\) needs "mailer", .*resolution path: ImportedHandler -> mailer\)/,
  })
})

t.test('verifyHandlers: false leaves it to the first stream (a generic error frame after a 200)', async (t) => {
  const { db: _db, ...withoutDb } = everything
  const app = await appWith(t, withoutDb, { verifyHandlers: false })
  await app.ready()
  const res = await app.inject({ method: 'POST', url: '/import', payload: { file: 'a.csv' } })
  t.equal(res.statusCode, 200)
  t.match(res.body, /"code":"FST_ERR_CQRS_STREAM_HANDLER_FAILED"/)
})

t.test('verifyHandlers must be a boolean', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(fastifyCqrsStream, { verifyHandlers: 'yes' as unknown as boolean }) }, {
    code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /"verifyHandlers" must be a boolean/,
  })
})

t.test('fastifyRequest is registered (undefined) at boot; other constructor errors are left to the stream', async (t) => {
  class Whoami extends Request(Type.Object({})) {}
  class WhoamiHandler extends StreamingRequestHandler<Whoami> {
    readonly #url: string
    constructor ({ fastifyRequest }: { fastifyRequest: FastifyRequest }) {
      super()
      this.#url = fastifyRequest.url
    }

    async * handle () { yield this.#url }
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, { requests: (map) => map.bind(Whoami, WhoamiHandler), heartbeatMs: 0 })
  app.streamRoute({ method: 'POST', url: '/whoami', request: Whoami })
  await app.ready()
  const res = await app.inject({ method: 'POST', url: '/whoami', payload: {} })
  t.match(res.body, /"data":"\/whoami"/)
})

t.test('the throwaway scope is disposed: scoped disposers run', async (t) => {
  const disposed: string[] = []
  class Scoped extends Request(Type.Object({})) {}
  class ScopedHandler extends StreamingRequestHandler<Scoped> {
    readonly #id: string
    constructor ({ connection }: { connection: { id: string } }) {
      super()
      this.#id = connection.id
    }

    async * handle () { yield this.#id }
  }
  const container = createContainer().register({
    connection: asFunction(({ streamId }: { streamId: string }) => ({ id: streamId })).scoped().disposer((c) => { disposed.push(c.id) }),
  })
  const mediator = bootstrapStreaming({ container, requests: (map) => map.bind(Scoped, ScopedHandler) })
  await mediator.verifyHandlers()
  t.same(disposed, ['fastify-cqrs-stream:verify'])
})

t.test('bootstrapStreaming: mediator.verifyHandlers() is the same check, by hand', async (t) => {
  const mediator = bootstrapStreaming({
    container: createContainer(),
    requests: (map) => map.bind(Import, ImportHandler),
  })
  await t.rejects(mediator.verifyHandlers(), { code: MISSING, message: /ImportHandler \(the handler of Import\) needs "csv"/ })
  const ok = bootstrapStreaming({
    container: createContainer().register(everything),
    requests: (map) => map.bind(Import, ImportHandler),
    events: (map) => map.bind(Imported, ImportedHandler),
  })
  await ok.verifyHandlers()
  t.pass('resolves when every class can be built')
})
