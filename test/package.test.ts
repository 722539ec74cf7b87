// The package as users get it: `npm run build` in a staged copy of the
// working tree, then the file list of `npm pack`, then the packed tarball
// installed into a consumer project that has only the declared dependencies,
// imported by name (ESM import and require) and type-checked against the
// type tests in test/types/. Everything happens in a temporary directory; the
// repository's own dist/ is neither needed nor touched.
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, posix, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

// It builds, packs, installs the tarball and type-checks a consumer twice (TypeScript 5.9
// and 7): about 50 s on 2 idle cores, past the 60 s of .taprc on a busy machine.
t.setTimeout(240_000)

const exec = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const docs = ['README.md', 'CHANGELOG.md', 'LICENSE']
const notCopied = new Set(['node_modules', '.git', 'dist', '.tap', 'coverage'])

// Children run as plain node/npm: no tap loader, no coverage collection.
const env: NodeJS.ProcessEnv = {}
for (const [key, value] of Object.entries(process.env)) {
  if (key === 'NODE_OPTIONS' || key === 'NODE_V8_COVERAGE' || key.startsWith('TAP') || key.startsWith('_TAPJS')) continue
  env[key] = value
}

async function run (command: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await exec(command, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string, stderr?: string }
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout ?? ''}\n${stderr ?? ''}`)
  }
}

interface PackReport { filename: string, files: Array<{ path: string }> }
interface PackageJson {
  repository: { type: string, url: string }
  homepage: string
  bugs: { url: string }
  scripts: Record<string, string>
  peerDependenciesMeta: Record<string, { optional?: boolean }>
  name: string
  version: string
  exports: Record<string, Record<string, string> | string>
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  sideEffects: boolean
  engines: { node: string }
}

const stage = await mkdtemp(join(tmpdir(), 'fastify-cqrs-stream-package-'))
t.teardown(() => rm(stage, { recursive: true, force: true }))
const pkgDir = join(stage, 'package')
const consumer = join(stage, 'consumer')
const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as PackageJson

t.before(async () => {
  await cp(root, pkgDir, { recursive: true, filter: (path) => !notCopied.has(relative(root, path).split(sep)[0] ?? '') })
  await symlink(join(root, 'node_modules'), join(pkgDir, 'node_modules'), 'dir')
})

t.test('npm run build compiles src/ into dist/ and checks the pack', async (t) => {
  const out = await run('npm', ['run', 'build'], pkgDir)
  t.match(out, /check-pack: .* only dist\/, docs and sql\/outbox\.sql/)
  const built = await readdir(join(pkgDir, 'dist'), { recursive: true })
  const builtPaths = built.map((path) => path.split(sep).join('/'))
  const sources = (await readdir(join(pkgDir, 'src'), { recursive: true })).filter((path) => path.endsWith('.ts'))
  t.ok(sources.length > 0, 'src/ has sources')
  for (const source of sources) {
    const base = source.replace(/\.ts$/, '').split(sep).join('/')
    t.ok(builtPaths.includes(`${base}.js`), `dist/${base}.js`)
    t.ok(builtPaths.includes(`${base}.d.ts`), `dist/${base}.d.ts`)
  }
  t.notOk(built.some((path) => path.endsWith('.map')), 'no source maps (their sources are not shipped)')

  // The client is served to browsers as is: plain ESM that imports only its own files.
  const clientFiles = builtPaths.filter((path) => path.startsWith('client/') && path.endsWith('.js'))
  t.ok(clientFiles.includes('client/index.js'), 'dist/client/index.js')
  for (const file of clientFiles) {
    const code = await readFile(join(pkgDir, 'dist', file), 'utf8')
    // Import and export statements start their line in tsc's output; JSDoc examples do not.
    const specifiers = [...code.matchAll(/^(?:(?:import|export)\b[^'"\n]*\bfrom|import)\s*['"]([^'"]+)['"]/gm)].map((match) => match[1])
    if (file === 'client/index.js') t.ok(specifiers.includes('./stream-command.js'), 'the imports are found')
    t.same(specifiers.filter((specifier) => !/^\.\/[\w-]+\.js$/.test(specifier!)), [], `dist/${file} imports only ./<file>.js`)
  }
})

let tarball = ''

t.test('npm pack holds only dist/, the docs, the outbox SQL and package.json', async (t) => {
  const [dry] = JSON.parse(await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], pkgDir)) as PackReport[]
  const paths = dry!.files.map((file) => file.path).sort()
  const stray = paths.filter((path) => !(path === 'package.json' || docs.includes(path) || /^dist\/.+\.(js|d\.ts)$/.test(path) || /^docs\/[\w.-]+\.(md|svg)$/.test(path) || path === 'sql/outbox.sql'))
  t.same(stray, [], 'nothing but dist/**/*.{js,d.ts}, docs/*.{md,svg}, sql/outbox.sql, README.md, CHANGELOG.md, LICENSE, package.json')
  for (const dir of ['src/', 'test/', 'example-app/', 'bench/', '.ci/', 'node_modules/']) {
    t.notOk(paths.some((path) => path.startsWith(dir)), `no ${dir}`)
  }
  t.ok(paths.includes('dist/index.js') && paths.includes('dist/index.d.ts'), 'the entry points')
  for (const doc of docs.filter((doc) => existsSync(join(pkgDir, doc)))) t.ok(paths.includes(doc), doc)

  const [packed] = JSON.parse(await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', stage], pkgDir)) as PackReport[]
  t.same(packed!.files.map((file) => file.path).sort(), paths, 'the real pack holds what the dry run listed')
  tarball = join(stage, packed!.filename)

  // Every relative link of the shipped docs points into the tarball: they
  // work in node_modules and on the npm page (which resolves them against
  // `repository`). Links elsewhere in the repository must be absolute.
  const shipped = new Set(paths)
  const broken: string[] = []
  for (const doc of paths.filter((path) => path.endsWith('.md'))) {
    const text = await readFile(join(pkgDir, doc), 'utf8')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^(?:[a-z]+:|#)/.test(target!)) continue
      const file = posix.normalize(posix.join(posix.dirname(doc), target!.split('#')[0]!))
      if (!shipped.has(file)) broken.push(`${doc}: ${target}`)
    }
  }
  t.same(broken, [], 'the docs link only to files the tarball holds')
})

t.test('npm pack on a fresh clone (no dist/) builds first: prepack', async (t) => {
  const fresh = join(stage, 'fresh')
  await cp(pkgDir, fresh, { recursive: true, filter: (path) => !notCopied.has(relative(pkgDir, path).split(sep)[0] ?? '') })
  await symlink(join(root, 'node_modules'), join(fresh, 'node_modules'), 'dir')
  t.notOk(existsSync(join(fresh, 'dist')), 'no dist/ to start with')
  const out = await run('npm', ['pack', '--dry-run', '--json'], fresh)
  t.match(out, /check-pack: /, 'the build ran')
  // The build's own output comes first on stdout; the report is the JSON after it.
  const [report] = JSON.parse(out.slice(out.search(/^\[/m))) as PackReport[]
  const files = report!.files.map((file) => file.path)
  t.ok(files.includes('dist/index.js') && files.includes('dist/client/index.d.ts'), 'the tarball holds the build')
})

t.test('package.json: types-first exports, fastify as a peer, no side effects', async (t) => {
  const dot = manifest.exports['.'] as Record<string, string>
  t.same(Object.keys(dot), ['types', 'default'], 'types first')
  t.same(dot, { types: './dist/index.d.ts', default: './dist/index.js' })
  t.same(manifest.exports['./client'], { types: './dist/client/index.d.ts', default: './dist/client/index.js' }, 'the client subpath, types first')
  t.same(manifest.exports['./redis'], { types: './dist/redis/index.d.ts', default: './dist/redis/index.js' }, 'the Redis subpath')
  t.same(manifest.exports['./amqp'], { types: './dist/amqp/index.d.ts', default: './dist/amqp/index.js' }, 'the AMQP subpath')
  t.same(manifest.exports['./postgres'], { types: './dist/postgres/index.d.ts', default: './dist/postgres/index.js' }, 'the PostgreSQL subpath')
  t.equal(manifest.exports['./sql/outbox.sql'], './sql/outbox.sql', "the outbox's SQL, for teams that run their own migrations")
  t.same(manifest.exports['./otel'], { types: './dist/otel/index.d.ts', default: './dist/otel/index.js' }, 'the OpenTelemetry subpath')
  t.same(manifest.peerDependenciesMeta, { '@opentelemetry/api': { optional: true }, amqplib: { optional: true }, ioredis: { optional: true }, pg: { optional: true } }, 'their drivers are optional peers')
  t.equal(manifest.peerDependencies.fastify, '^5.0.0')
  t.notOk('fastify' in manifest.dependencies, 'fastify is a peer, not a dependency')
  t.equal(manifest.peerDependencies['@sinclair/typebox'], '^0.34.0', 'TypeBox is a peer: the app and the package must share one copy for the schema types to match')
  t.notOk('@sinclair/typebox' in manifest.dependencies)
  t.equal(manifest.sideEffects, false)
  t.equal(manifest.engines.node, '>=20.19')
  t.match(manifest.repository, { type: 'git', url: /^git\+https:\/\/github\.com\/[\w-]+\/fastify-cqrs-stream\.git$/ }, 'repository, for the npm page')
  t.equal(manifest.homepage, `${manifest.repository.url.slice(4, -4)}#readme`)
  t.equal(manifest.bugs.url, `${manifest.repository.url.slice(4, -4)}/issues`)
  t.equal(manifest.scripts.prepack, 'npm run build', 'npm pack and npm publish build dist/ first')
})

t.test('the installed tarball works with only the declared dependencies', async (t) => {
  t.ok(tarball, 'packed by the previous test')
  const installed = join(consumer, 'node_modules', manifest.name)
  await mkdir(installed, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1'], stage)
  // The consumer sees the dependencies and peers the package declares (plus
  // what the type tests import), linked from this repository; nothing else.
  const linked = [
    ...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies),
    '@types/node', '@types/pg', '@fastify/type-provider-typebox',
  ]
  for (const name of new Set(linked)) {
    await mkdir(join(consumer, 'node_modules', name, '..'), { recursive: true })
    await symlink(join(root, 'node_modules', name), join(consumer, 'node_modules', name), 'dir')
  }
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))

  t.test('imported by name, default and named are one plugin that serves a stream', async (t) => {
    await writeFile(join(consumer, 'check.mjs'), `
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import fastifyCqrsStreamDefault, { fastifyCqrsStream, Request, StreamingRequestHandler } from 'fastify-cqrs-stream'
import { streamCommand, StreamCommandError } from 'fastify-cqrs-stream/client'
import { RedisStreamStore } from 'fastify-cqrs-stream/redis'
import { AmqpMessageBroker } from 'fastify-cqrs-stream/amqp'
import { PostgresOutbox, OutboxRelay } from 'fastify-cqrs-stream/postgres'
import { instrument } from 'fastify-cqrs-stream/otel'
import { readFileSync } from 'node:fs'


const require = createRequire(import.meta.url)
const required = require('fastify-cqrs-stream')
class Tick extends Request(Type.Object({ count: Type.Integer() })) {}
class TickHandler extends StreamingRequestHandler {
  async * handle (request) { for (let n = 0; n < request.count; n++) yield { n } }
}
const app = Fastify()
await app.register(fastifyCqrsStreamDefault, { requests: (map) => map.bind(Tick, TickHandler) })
app.streamRoute({ method: 'POST', url: '/ticks', request: Tick })
const response = await app.inject({ method: 'POST', url: '/ticks', payload: { count: 2 } })
const base = await app.listen({ port: 0, host: '127.0.0.1' })
const clientFrames = []
for await (const frame of streamCommand(base + '/ticks', { body: { count: 1 } })) clientFrames.push(frame.type)
const clientError = await streamCommand(base + '/ticks', { body: { count: 'x' } }).next().catch((error) => error)
await app.close()
console.log(JSON.stringify({
  same: fastifyCqrsStreamDefault === fastifyCqrsStream,
  requiredSame: required.default === fastifyCqrsStream && required.fastifyCqrsStream === fastifyCqrsStream,
  resolved: import.meta.resolve('fastify-cqrs-stream'),
  version: require('fastify-cqrs-stream/package.json').version,
  status: response.statusCode,
  contentType: response.headers['content-type'],
  clientResolved: import.meta.resolve('fastify-cqrs-stream/client'),
  clientFrames,
  clientError: clientError instanceof StreamCommandError && clientError.code + ' ' + clientError.statusCode,
  optional: [import.meta.resolve('fastify-cqrs-stream/redis'), typeof RedisStreamStore, import.meta.resolve('fastify-cqrs-stream/amqp'), typeof AmqpMessageBroker.connect, import.meta.resolve('fastify-cqrs-stream/postgres'), typeof PostgresOutbox, typeof OutboxRelay, import.meta.resolve('fastify-cqrs-stream/otel'), typeof instrument],
  outboxSql: readFileSync(new URL(import.meta.resolve('fastify-cqrs-stream/sql/outbox.sql')), 'utf8').includes('CREATE TABLE IF NOT EXISTS cqrs_outbox'),
  frames: response.body.split('\\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6))),
}))
`)
    const result = JSON.parse(await run(process.execPath, ['check.mjs'], consumer)) as Record<string, unknown>
    t.equal(result.same, true, 'import default === import { fastifyCqrsStream }')
    t.equal(result.requiredSame, true, 'require() gives the same module (Node >= 20.19)')
    t.match(result.resolved, /\/consumer\/node_modules\/fastify-cqrs-stream\/dist\/index\.js$/)
    t.equal(result.version, manifest.version, 'fastify-cqrs-stream/package.json is exported')
    t.equal(result.status, 200)
    t.match(result.contentType, /^text\/event-stream/)
    t.match(result.frames, [{ type: 'start' }, { type: 'progress', data: { n: 0 } }, { type: 'progress', data: { n: 1 } }, { type: 'complete' }])
    t.equal((result.frames as unknown[]).length, 4)
    t.match(result.clientResolved, /\/consumer\/node_modules\/fastify-cqrs-stream\/dist\/client\/index\.js$/)
    t.same(result.clientFrames, ['start', 'progress', 'complete'], 'fastify-cqrs-stream/client streams the route')
    t.equal(result.clientError, 'FST_ERR_VALIDATION 400', 'and throws its coded errors')
    t.match(result.optional, [/\/dist\/redis\/index\.js$/, 'function', /\/dist\/amqp\/index\.js$/, 'function', /\/dist\/postgres\/index\.js$/, 'function', 'function', /\/dist\/otel\/index\.js$/, 'function'], 'the optional subpaths load with their drivers')
    t.equal(result.outboxSql, true, 'the outbox SQL file is exported')
  })

  t.test('the main entry and the client never load the optional drivers', async (t) => {
    // Every file reachable from an entry point through its relative imports
    // (tsc ends each statement with `;`, so a multi-line import is one match).
    const reachable = async (entry: string): Promise<Set<string>> => {
      const seen = new Set<string>()
      const visit = async (file: string): Promise<void> => {
        if (seen.has(file)) return
        seen.add(file)
        const code = await readFile(join(installed, file), 'utf8')
        for (const [, specifier] of code.matchAll(/^(?:import|export)\b[^'";]*?(?:\bfrom\s*)?['"]([^'"]+)['"]/gm)) {
          if (specifier!.startsWith('.')) await visit(join(file, '..', specifier!))
          else seen.add(`package:${specifier}`)
        }
      }
      await visit(entry)
      return seen
    }
    const main = await reachable('dist/index.js')
    t.ok(main.has('package:awilix'), 'the walk finds package imports')
    t.notOk(main.has('package:ioredis') || main.has('package:amqplib') || main.has('package:pg') || main.has('package:@opentelemetry/api'), 'the main entry imports none of ioredis, amqplib, pg and @opentelemetry/api')
    t.ok((await reachable('dist/otel/index.js')).has('package:@opentelemetry/api'), 'the OpenTelemetry entry does')
    t.ok((await reachable('dist/redis/index.js')).has('package:ioredis'), 'the Redis entry does')
    t.ok((await reachable('dist/amqp/index.js')).has('package:amqplib'), 'the AMQP entry does')
  })

  t.test('the type tests compile against the packed declarations', async (t) => {
    const types = join(consumer, 'types')
    await mkdir(types)
    for (const file of await readdir(join(root, 'test', 'types'))) {
      const text = await readFile(join(root, 'test', 'types', file), 'utf8')
      const rewritten = text
        .replaceAll("from '../../src/index.js'", "from 'fastify-cqrs-stream'")
        .replaceAll("from '../../src/client/index.js'", "from 'fastify-cqrs-stream/client'")
        .replaceAll("from '../../src/redis/index.js'", "from 'fastify-cqrs-stream/redis'")
        .replaceAll("from '../../src/amqp/index.js'", "from 'fastify-cqrs-stream/amqp'")
        .replaceAll("from '../../src/postgres/index.js'", "from 'fastify-cqrs-stream/postgres'")
        .replaceAll("from '../../src/otel/index.js'", "from 'fastify-cqrs-stream/otel'")
      if (file.endsWith('.test-d.ts')) t.not(rewritten, text, `${file} imports the package`)
      await writeFile(join(types, file), rewritten)
    }
    await writeFile(join(consumer, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        types: ['node'],
        strict: true,
        noEmit: true,
        // Declarations are still exercised: an unresolved type in them would
        // turn into `any` and leave an @ts-expect-error line unused.
        skipLibCheck: true,
        verbatimModuleSyntax: true,
      },
      include: ['types'],
    }))
    // Consumers compile with TypeScript 5.9 (the JavaScript API most tools
    // load) or the native 7.x compiler (typescript@latest): both are checked.
    // tap's process-info hook adds an --import to every child node's
    // NODE_OPTIONS; 7.x's ESM entry cannot load under it: `env -u` drops it.
    const node = (args: string[]): Promise<string> => run('env', ['-u', 'NODE_OPTIONS', process.execPath, ...args], consumer)
    for (const compiler of ['typescript', 'typescript-7']) {
      const tsc = join(root, 'node_modules', compiler, 'bin', 'tsc')
      const version = (await node([tsc, '--version'])).trim()
      t.match(version, compiler === 'typescript' ? /^Version 5\.9\./ : /^Version 7\./, compiler)
      const out = await node([tsc, '-p', consumer, '--pretty', 'false'])
      t.equal(out, '', `${version}: every assertion holds and every @ts-expect-error line fails`)
    }
  })
})
