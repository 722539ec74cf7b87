// The package's entry point, as src: the default and the named export are one
// plugin, the product's names are exported, and the plugin is a
// fastify-plugin (its decorators reach the app it is registered on).
// test/package.test.ts checks the same on the built, packed package.
import Fastify from 'fastify'
import t from 'tap'
import fastifyCqrsStreamDefault, * as entry from '../src/index.js'

t.test('the default export and the named export are the same plugin', async (t) => {
  t.equal(typeof fastifyCqrsStreamDefault, 'function')
  t.equal(fastifyCqrsStreamDefault, entry.fastifyCqrsStream)
  t.equal(entry.default, entry.fastifyCqrsStream)
  const dynamic = await import('../src/index.js')
  t.equal(dynamic.default, dynamic.fastifyCqrsStream)
  t.equal(dynamic.fastifyCqrsStream, entry.fastifyCqrsStream)
})

t.test('the plugin carries fastify-plugin metadata', async (t) => {
  const plugin = entry.fastifyCqrsStream as unknown as Record<symbol, unknown>
  t.equal(plugin[Symbol.for('skip-override')], true, 'not encapsulated: decorators reach the parent')
  t.equal(plugin[Symbol.for('fastify.display-name')], 'fastify-cqrs-stream')
  t.match(plugin[Symbol.for('plugin-meta')], { name: 'fastify-cqrs-stream', fastify: '5.x' })
})

t.test('every name the design lists is exported, classes and functions alike', async (t) => {
  const functions = [
    'fastifyCqrsStream', 'Request', 'Response', 'DomainEvent', 'NotificationEvent',
    'StreamingRequestHandler', 'EventHandler', 'RequestMap', 'EventMap',
    'StreamingRequestMediator', 'bootstrapStreaming', 'DevNullMessageBroker', 'InMemoryMessageBroker',
    'RequestMessage', 'ResponseMessage', 'DomainEventMessage', 'NotificationEventMessage',
  ]
  const exports = entry as unknown as Record<string, unknown>
  for (const name of functions) t.equal(typeof exports[name], 'function', name)
  t.type(entry.errors, 'object', 'errors namespace')
  for (const [name, value] of Object.entries(entry)) t.not(value, undefined, `${name} is defined`)
})

for (const [how, plugin] of [['default', fastifyCqrsStreamDefault], ['named', entry.fastifyCqrsStream]] as const) {
  t.test(`registering the ${how} export decorates the app itself`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(plugin)
    await app.ready()
    t.ok(app.mediator instanceof entry.StreamingRequestMediator, 'app.mediator')
    t.equal(typeof app.streamRoute, 'function', 'app.streamRoute')
    t.ok(app.hasReplyDecorator('eventStream'), 'reply.eventStream')
  })
}

// The layers: messages, handlers and maps know no transport; the mediator
// runs streams without knowing SSE or Fastify; only the plugin and sse/ do.
t.test('the mediator and the layers below it import nothing from sse/ or plugin/', async (t) => {
  const { readdir, readFile } = await import('node:fs/promises')
  const src = new URL('../src/', import.meta.url)
  const imports = /^(?:import|export)\b[^'";]*?(?:\bfrom\s*)?['"]([^'"]+)['"]/gm
  let files = 0
  for (const layer of ['mediator', 'handlers', 'maps', 'messages', 'events', 'run']) {
    for (const file of await readdir(new URL(`${layer}/`, src))) {
      files++
      const code = await readFile(new URL(`${layer}/${file}`, src), 'utf8')
      const wrong = [...code.matchAll(imports)].map((match) => match[1]!).filter((spec) => /^\.\.\/(?:sse|plugin|client|resume)\//.test(spec))
      t.same(wrong, [], `src/${layer}/${file}`)
    }
  }
  t.ok(files > 20, 'the files were read')
})
