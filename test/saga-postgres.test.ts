// Sagas on the real PostgreSQL: state, log and a step's notification events
// in one transaction; a saga process SIGKILLed mid-step recovered by
// another (each step's effect applied once); concurrent recoverers that
// never run one saga twice; a recovered compensation; bounded recoveries.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { asValue, createContainer } from 'awilix'
import Fastify from 'fastify'
import pg from 'pg'
import t, { type Test } from 'tap'
import fastifyCqrsStream, { SagaRecovery, type SagaExecution } from '../src/index.js'
import { PostgresSagaStorage } from '../src/postgres/index.js'
import { PG_URL, testOutbox, testPool } from './fixtures/postgres.js'
import { parseSse, payload } from './fixtures/sse-parser.js'
import { BookTripCommand, BookTripSaga, tripTables } from './fixtures/trip-saga.js'

async function tables (t: Test, pool: pg.Pool): Promise<string> {
  const prefix = `test_saga_${randomUUID().slice(0, 8)}`
  await new PostgresSagaStorage({ pool, tablePrefix: prefix }).migrate()
  await tripTables(pool, prefix)
  t.teardown(async () => {
    const admin = new pg.Client({ connectionString: PG_URL })
    await admin.connect()
    await admin.query(`DROP TABLE IF EXISTS ${prefix}_log, ${prefix}_executions, ${prefix}_effects, ${prefix}_acts`)
    await admin.end()
  })
  return prefix
}

const effectsOf = async (pool: pg.Pool, prefix: string, sagaId: string): Promise<string[]> =>
  (await pool.query<{ step: string }>(`SELECT step FROM ${prefix}_effects WHERE saga_id = $1 ORDER BY step`, [sagaId])).rows.map((r) => r.step)
const actsOf = async (pool: pg.Pool, prefix: string, sagaId: string): Promise<string[]> =>
  (await pool.query<{ step: string, kind: string }>(`SELECT step, kind FROM ${prefix}_acts WHERE saga_id = $1 ORDER BY at`, [sagaId])).rows.map((r) => `${r.kind} ${r.step}`)

function containerFor (pool: pg.Pool, prefix: string, storage: PostgresSagaStorage): ReturnType<typeof createContainer> {
  return createContainer({ strict: true }).register({ pool: asValue(pool), tripTables: asValue(prefix), sagaStorage: asValue(storage) })
}

t.test('a saga on PostgreSQL: its state and log; each step\'s notification event in the outbox with the step, none for a refused save', async (t) => {
  const pool = testPool(t)
  const prefix = await tables(t, pool)
  const outbox = await testOutbox(t, pool)
  const storage = new PostgresSagaStorage({ pool, tablePrefix: prefix, outbox })
  t.teardown(() => { storage.close() })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCqrsStream, { container: containerFor(pool, prefix, storage), requests: (map) => map.bind(BookTripCommand, BookTripSaga), heartbeatMs: 0 })
  app.streamRoute({ method: 'POST', url: '/trips', request: BookTripCommand })

  const ok = parseSse((await app.inject({ method: 'POST', url: '/trips', payload: { tripId: 'a' } })).body).frames.map(payload)
  const id = ok[0]!.streamId as string
  t.same(ok.slice(1).map((p) => p.type === 'progress' ? `${(p.data as { step: string }).step} ${(p.data as { status: string }).status}` : p.type),
    ['ReserveHotel done', 'ReserveFlight done', 'ChargeCard done', 'complete'])
  t.match(await storage.load(id), { id, saga: 'BookTripSaga', status: 'completed', completed: 3, version: 7, context: { tripId: 'a' } })
  t.same((await storage.log(id)).map((e) => `${e.step} ${e.status}`), [
    'BookTripSaga acting', 'ReserveHotel acting', 'ReserveHotel done', 'ReserveFlight acting', 'ReserveFlight done', 'ChargeCard acting', 'ChargeCard done', 'BookTripSaga done',
  ])
  const rows = await pool.query<{ payload: { step: string } }>(`SELECT payload FROM ${outbox.table} ORDER BY id`)
  t.same(rows.rows.map((r) => r.payload.step), ['ReserveHotel', 'ReserveFlight', 'ChargeCard'], 'one outbox row per step, written with it')
  const { rows: [lease] } = await pool.query(`SELECT lease_owner, lease_until FROM ${prefix}_executions WHERE id = $1`, [id])
  t.same(lease, { lease_owner: null, lease_until: null }, 'a finished saga holds no lease')

  // A failure compensates; the log has the failed step's error.
  const failed = parseSse((await app.inject({ method: 'POST', url: '/trips', payload: { tripId: 'b', failAt: 2 } })).body).frames.map(payload)
  const failedId = failed[0]!.streamId as string
  t.match(failed.at(-1), { type: 'error', error: { code: 'FST_ERR_CQRS_STREAM_SAGA_COMPENSATED' } })
  t.match(await storage.load(failedId), { status: 'compensated', completed: 1, compensated: 1, error: 'ReserveFlight failed' })
  t.match((await storage.log(failedId)).find((e) => e.status === 'failed'), { step: 'ReserveFlight', error: 'ReserveFlight failed' })
  t.same(await effectsOf(pool, prefix, failedId), [])

  // A save refused (another instance holds the lease): nothing of it is written, the outbox row included.
  const other = new PostgresSagaStorage({ pool, tablePrefix: prefix, outbox, instanceId: 'someone-else' })
  const execution: SagaExecution = { id: 'x1', saga: 'BookTripSaga', status: 'running', context: { tripId: 'x', failAt: 0 }, completed: 0, results: [], compensated: 0, version: 0 }
  await other.create(execution)
  other.close()
  await t.rejects(storage.create(execution), { code: 'FST_ERR_CQRS_STREAM_SAGA_CONFLICT' })
  const before = (await pool.query(`SELECT count(*)::int AS n FROM ${outbox.table}`)).rows[0].n as number
  const { StepDone } = await import('./fixtures/trip-saga.js')
  await t.rejects(storage.save({ ...execution, completed: 1, version: 1 }, { step: 'ReserveHotel', status: 'done', attempt: 1, at: new Date() }, [new StepDone({ tripId: 'x', step: 'ReserveHotel' })]),
    { code: 'FST_ERR_CQRS_STREAM_SAGA_CONFLICT' })
  t.equal((await pool.query(`SELECT count(*)::int AS n FROM ${outbox.table}`)).rows[0].n, before, 'no outbox row for the refused save')
  t.equal(await storage.load('unknown'), undefined)
})

t.test('a saga process SIGKILLed mid-step is recovered by another: it acts on from that step, each effect applied once', async (t) => {
  const pool = testPool(t)
  const prefix = await tables(t, pool)
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/saga-process.ts', import.meta.url))], {
    env: { ...process.env, PREFIX: prefix, LEASE_MS: '600', SAGA_HANG_AT: '2' }, stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const [line] = await once(child.stdout!, 'data') as [Buffer]
  const port = Number(/listening (\d+)/.exec(line.toString())![1])
  // The stream is read until ReserveFlight hangs after its effect.
  const response = await fetch(`http://127.0.0.1:${port}/trips`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tripId: 'k' }) })
  const reader = response.body!.getReader()
  let text = ''
  while (!text.includes('"step":"ReserveHotel"')) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`the stream ended early: ${text}`)
    text += new TextDecoder().decode(value)
  }
  const sagaId = payload(parseSse(text.slice(0, text.indexOf('\n\n') + 2)).frames[0]!).streamId as string
  while ((await effectsOf(pool, prefix, sagaId)).length < 2) await new Promise((resolve) => setTimeout(resolve, 20))
  child.kill('SIGKILL')
  const killedAt = Date.now()
  await once(child, 'exit')
  await reader.cancel().catch(() => {})
  t.match(await (new PostgresSagaStorage({ pool, tablePrefix: prefix })).load(sagaId), { status: 'running', completed: 1 }, 'interrupted while ReserveFlight acted')

  const storage = new PostgresSagaStorage({ pool, tablePrefix: prefix, leaseMs: 600 })
  t.teardown(() => { storage.close() })
  const logged: string[] = []
  const logger = { info (_o: object, m: string) { logged.push(m) }, warn (_o: object, m: string) { logged.push(m) }, error (_o: object, m: string) { logged.push(m) } }
  const recovery = new SagaRecovery({ storage, sagas: [BookTripSaga], container: containerFor(pool, prefix, storage), intervalMs: 100, logger })
  recovery.start()
  t.teardown(() => recovery.stop())
  while ((await storage.load(sagaId))?.status !== 'completed') await new Promise((resolve) => setTimeout(resolve, 20))
  const recoveredMs = Date.now() - killedAt
  t.ok(recoveredMs < 10_000, `recovered ${recoveredMs} ms after the kill (lease 600 ms)`)
  t.same(await effectsOf(pool, prefix, sagaId), ['ChargeCard', 'ReserveFlight', 'ReserveHotel'], 'each effect applied once')
  t.same(await actsOf(pool, prefix, sagaId), ['act ReserveHotel', 'act ReserveFlight', 'act ReserveFlight', 'act ChargeCard'],
    'ReserveFlight, in progress at the kill, acted again (at least once); ReserveHotel did not')
  t.ok(logged.includes('fastify-cqrs-stream: recovering an interrupted saga') && logged.includes('fastify-cqrs-stream: a recovered saga completed'))
  const { rows: [{ recoveries }] } = await pool.query(`SELECT recoveries FROM ${prefix}_executions WHERE id = $1`, [sagaId])
  t.equal(recoveries, 1)
})

t.test('two recoverers on 40 interrupted sagas: every saga recovered once, no step acted twice', async (t) => {
  const pool = testPool(t)
  const prefix = await tables(t, pool)
  const ids = Array.from({ length: 40 }, (_, i) => `r${i}`)
  // Interrupted after ReserveHotel (done, its effect applied), leases long lapsed.
  for (const id of ids) {
    await pool.query(`INSERT INTO ${prefix}_executions (id, saga, status, context, completed, results, compensated, version, lease_owner, lease_until)
VALUES ($1, 'BookTripSaga', 'running', $2, 1, '[{"step":"ReserveHotel"}]', 0, 3, 'dead', now() - interval '1 minute')`, [id, JSON.stringify({ tripId: id, failAt: 0 })])
    await pool.query(`INSERT INTO ${prefix}_effects (saga_id, step) VALUES ($1, 'ReserveHotel')`, [id])
  }
  const recoverers = ['one', 'two'].map((instanceId) => {
    const storage = new PostgresSagaStorage({ pool, tablePrefix: prefix, instanceId })
    t.teardown(() => { storage.close() })
    return new SagaRecovery({ storage, sagas: [BookTripSaga], container: containerFor(pool, prefix, storage), batchSize: 7 })
  })
  for (let round = 0; round < 10; round++) await Promise.all(recoverers.map((r) => r.recoverNow()))
  const { rows } = await pool.query<{ status: string, n: number }>(`SELECT status, count(*)::int AS n FROM ${prefix}_executions GROUP BY status`)
  t.same(rows, [{ status: 'completed', n: 40 }])
  const { rows: acts } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${prefix}_acts GROUP BY saga_id, step HAVING count(*) > 1`)
  t.same(acts, [], 'no step acted twice')
  const { rows: [{ total }] } = await pool.query(`SELECT count(*)::int AS total FROM ${prefix}_acts`)
  t.equal(total, 80, 'ReserveFlight and ChargeCard once per saga')
  const { rows: recovered } = await pool.query<{ recoveries: number }>(`SELECT DISTINCT recoveries FROM ${prefix}_executions`)
  t.same(recovered, [{ recoveries: 1 }], 'each taken by one recoverer, once')
  await Promise.all(recoverers.map((r) => r.stop()))
})

t.test('a recovered compensation goes on from where it stopped; a saga over maxRecoveries or of an unknown class is left', async (t) => {
  const pool = testPool(t)
  const prefix = await tables(t, pool)
  const insert = (id: string, saga: string, status: string, completed: number, compensated: number, recoveries = 0): Promise<unknown> => pool.query(
    `INSERT INTO ${prefix}_executions (id, saga, status, context, completed, results, compensated, version, error, lease_owner, lease_until, recoveries)
VALUES ($1, $2, $3, $4, $5, '[{"step":"ReserveHotel"},{"step":"ReserveFlight"}]', $6, 9, 'ChargeCard failed', 'dead', now() - interval '1 minute', $7)`,
    [id, saga, status, JSON.stringify({ tripId: id, failAt: 0 }), completed, compensated, recoveries])
  // ReserveFlight was undone before the crash; ReserveHotel was not.
  await insert('c1', 'BookTripSaga', 'compensating', 2, 1)
  await pool.query(`INSERT INTO ${prefix}_effects (saga_id, step) VALUES ('c1', 'ReserveHotel')`)
  await insert('c2', 'BookTripSaga', 'running', 1, 0, 5)
  await insert('c3', 'SomeOtherSaga', 'running', 1, 0)
  const storage = new PostgresSagaStorage({ pool, tablePrefix: prefix })
  t.teardown(() => { storage.close() })
  const errors: string[] = []
  const logger = { info () {}, warn () {}, error (_o: object, m: string) { errors.push(m) } }
  const recovery = new SagaRecovery({ storage, sagas: [BookTripSaga], container: containerFor(pool, prefix, storage), logger, maxRecoveries: 5 })
  await recovery.recoverNow()
  t.match(await storage.load('c1'), { status: 'compensated', compensated: 2 })
  t.same(await actsOf(pool, prefix, 'c1'), ['compensate ReserveHotel'], 'only what was not undone yet')
  t.same(await effectsOf(pool, prefix, 'c1'), [])
  t.match(await storage.load('c2'), { status: 'running' }, 'over maxRecoveries: left for an operator')
  t.match(await storage.load('c3'), { status: 'running' })
  t.same(errors, ['fastify-cqrs-stream: an interrupted saga of a class this recovery was not given; add it to `sagas`'])
})

t.test('bad options, and a storage that fails to claim: coded errors, a warning and another look later', async (t) => {
  const pool = testPool(t)
  const storage = new PostgresSagaStorage({ pool })
  const container = createContainer()
  t.throws(() => new PostgresSagaStorage({ pool: {} as never }), { code: 'FST_ERR_CQRS_STREAM_INVALID_OPTION', message: /"pool"/ })
  t.throws(() => new PostgresSagaStorage({ pool, leaseMs: 5 }), { message: /"leaseMs" must be an integer of at least 100/ })
  t.throws(() => new PostgresSagaStorage({ pool, tablePrefix: 'Bad;' }), { message: /"tablePrefix"/ })
  t.throws(() => new SagaRecovery({ storage, sagas: [], container, intervalMs: 0 }), { message: /"intervalMs" must be an integer of at least 1/ })
  t.throws(() => new SagaRecovery({ storage: {} as never, sagas: [], container }), { message: /"storage" must be a storage that recovers/ })
  const warnings: string[] = []
  const failing = { ...storage, claim: () => Promise.reject(new Error('down')) } as unknown as PostgresSagaStorage
  const recovery = new SagaRecovery({ storage: failing, sagas: [], container, intervalMs: 10_000, logger: { info () {}, error () {}, warn (_o: object, m: string) { warnings.push(m) } } })
  recovery.start()
  recovery.start()
  await recovery.recoverNow()
  await recovery.stop()
  recovery.start()
  t.same(warnings, ['fastify-cqrs-stream: looking for interrupted sagas failed; looking again later'])
})

t.test('leases are renewed while a saga runs; failures of migrate, create, a renewal and a recovered run are reported', async (t) => {
  const pool = testPool(t)
  const prefix = await tables(t, pool)
  const storage = new PostgresSagaStorage({ pool, tablePrefix: prefix, leaseMs: 300 })
  t.teardown(() => { storage.close() })
  const execution: SagaExecution = { id: 'l1', saga: 'BookTripSaga', status: 'running', context: { tripId: 'l1', failAt: 0 }, completed: 0, results: [], compensated: 0, version: 0 }
  await storage.create(execution)
  const leaseOf = async (): Promise<number> => (await pool.query(`SELECT extract(epoch FROM lease_until) * 1000 AS ms FROM ${prefix}_executions WHERE id = 'l1'`)).rows[0].ms as number
  const first = await leaseOf()
  await new Promise((resolve) => setTimeout(resolve, 450))
  t.ok(await leaseOf() > first, 'renewed while held')
  await storage.save({ ...execution, status: 'completed', version: 1 }, { step: 'BookTripSaga', status: 'done', attempt: 1, at: new Date() })
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.match(await storage.load('l1'), { status: 'completed' }, 'nothing held: the renewals stop touching it')

  await t.rejects(storage.create({ ...execution, id: 'l2', status: 'bogus' as never }), { code: '23514' }, 'a refused row is PostgreSQL\'s error')
  // A table of that name but another shape: the migration stops at PostgreSQL's error.
  await pool.query(`CREATE TABLE ${prefix}_old_executions (id text PRIMARY KEY)`)
  t.teardown(() => pool.query(`DROP TABLE IF EXISTS ${prefix}_old_executions`))
  await t.rejects(new PostgresSagaStorage({ pool, tablePrefix: `${prefix}_old` }).migrate(), { code: '42703', message: /column "status" does not exist/ })

  // A renewal on a pool that has ended: ignored, the lease lapses.
  const gone = new pg.Pool({ connectionString: PG_URL })
  const orphan = new PostgresSagaStorage({ pool: gone, tablePrefix: prefix, leaseMs: 150 })
  await orphan.create({ ...execution, id: 'l3' })
  await gone.end()
  await new Promise((resolve) => setTimeout(resolve, 200))
  orphan.close()

  // A recovered run whose save fails: logged as an error.
  class FailingStorage extends PostgresSagaStorage {
    override async save (): Promise<void> { throw new Error('disk full') }
  }
  const failing = new FailingStorage({ pool, tablePrefix: prefix, leaseMs: 300 })
  t.teardown(() => { failing.close() })
  await pool.query(`UPDATE ${prefix}_executions SET lease_until = now() - interval '1 minute' WHERE id = 'l3'`)
  const errors: string[] = []
  const recovery = new SagaRecovery({ storage: failing, sagas: [BookTripSaga], container: containerFor(pool, prefix, failing), logger: { info () {}, warn () {}, error (_o: object, m: string) { errors.push(m) } } })
  await recovery.recoverNow()
  t.same(errors, ['fastify-cqrs-stream: a recovered saga failed'])
})
