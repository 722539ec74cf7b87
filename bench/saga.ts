// What a saga step costs on PostgreSQL: sagas of three steps that do
// nothing, run one after another through the mediator, with the state and
// log saved by PostgresSagaStorage (2 saves per step: acting, done) or kept
// in memory. Reports p50/p99 of the time from one step's progress item to
// the next. Needs the PostgreSQL of DATABASE_URL (default: database test
// on loopback).
// usage: node --import tsx bench/saga.ts [sagas=500]
import { randomUUID } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import { asValue, createContainer } from 'awilix'
import Fastify from 'fastify'
import pg from 'pg'
import fastifyCqrsStream, { InMemorySagaStorage, Request, Saga, SagaStep, type SagaStorage } from '../src/index.js'
import { PostgresSagaStorage } from '../src/postgres/index.js'

const sagas = Number(process.argv[2] ?? 500)
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const Context = Type.Object({ n: Type.Integer() })
class Run extends Request(Type.Object({ n: Type.Integer() })) {}
class Noop extends SagaStep<{ n: number }, number> {
  async act (context: { n: number }): Promise<number> { return context.n }
  async compensate (): Promise<void> {}
}
class A extends Noop {}
class B extends Noop {}
class C extends Noop {}
class ThreeSteps extends Saga(Context)<Run> {
  readonly steps = [A, B, C]
  begin ({ n }: Run): { n: number } { return { n } }
}

async function measure (label: string, storage: SagaStorage): Promise<void> {
  const app = Fastify()
  await app.register(fastifyCqrsStream, {
    container: createContainer().register({ sagaStorage: asValue(storage) }),
    requests: (map) => map.bind(Run, ThreeSteps),
  })
  await app.ready()
  const steps: number[] = []
  const whole: number[] = []
  for (let i = 0; i < sagas + 50; i++) {
    const started = performance.now()
    let last = started
    const times: number[] = []
    for await (const item of app.mediator.stream(new Run({ n: i }))) {
      if (item === undefined) throw new Error('a saga yields a progress item per step')
      const now = performance.now()
      times.push(now - last)
      last = now
    }
    // The first 50 warm up.
    if (i >= 50) {
      steps.push(...times.slice(1))
      whole.push(performance.now() - started)
    }
  }
  await app.close()
  const at = (values: number[], q: number): string => values.sort((a, b) => a - b)[Math.floor(q * (values.length - 1))]!.toFixed(3)
  console.log(`${label.padEnd(22)} per step p50 ${at(steps, 0.5)} ms, p99 ${at(steps, 0.99)} ms; per saga (3 steps, create + 7 saves) p50 ${at(whole, 0.5)} ms, p99 ${at(whole, 0.99)} ms`)
}

const pool = new pg.Pool({ connectionString: url, max: 4 })
const prefix = `bench_saga_${randomUUID().slice(0, 8)}`
const storage = new PostgresSagaStorage({ pool, tablePrefix: prefix })
await storage.migrate()
try {
  console.log(`${sagas} sagas of 3 no-op steps, one after another`)
  await measure('in memory', new InMemorySagaStorage())
  await measure('PostgreSQL', storage)
} finally {
  storage.close()
  await pool.query(`DROP TABLE IF EXISTS ${prefix}_log, ${prefix}_executions`)
  await pool.end()
}
