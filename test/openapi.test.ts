// With @fastify/swagger registered, stream routes document their command,
// their text/event-stream frames with the result schema, and the routes
// that resume and twoStep add.
import swagger from '@fastify/swagger'
import t from 'tap'
import { Tick, TicksCommand, ticksApp } from './fixtures/ticks-app.js'

interface Operation {
  summary?: string
  operationId?: string
  parameters?: Array<{ name: string, in: string, required?: boolean }>
  requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> }
  responses: Record<string, { description: string, content?: Record<string, { schema: Record<string, unknown> }> }>
}
type Paths = Record<string, Record<string, Operation>>

t.test('stream routes appear in the OpenAPI document', async (t) => {
  const { app } = await ticksApp(t)
  await app.register(swagger, { openapi: { info: { title: 'ticks', version: '1' } } })
  app.streamRoute({ method: 'GET', url: '/ticks', request: TicksCommand, response: Tick, resume: true, schema: { tags: ['ticks'], summary: 'Stream ticks' } })
  app.streamRoute({ method: 'POST', url: '/jobs', request: TicksCommand, response: Tick, twoStep: true })
  app.streamRoute({
    method: 'POST',
    url: '/queues/:queue/jobs',
    request: TicksCommand,
    twoStep: true,
    schema: { params: { type: 'object', properties: { queue: { type: 'string' } } } },
  })
  await app.ready()
  const paths = (app.swagger() as unknown as { paths: Paths }).paths

  const get = paths['/ticks']!.get!
  t.same(get.parameters?.map((p) => [p.in, p.name, p.required]), [['query', 'count', true], ['query', 'lastEventId', false], ['header', 'last-event-id', false]],
    'the command, and the reconnect id in both its forms')
  t.match(get.responses['400'], { description: /FST_ERR_VALIDATION/ }, 'a command that does not match is a 400')
  const frame = get.responses['200']!.content!['text/event-stream']!.schema as { oneOf: Array<{ properties: { type: { const?: string, enum?: string[] }, data?: unknown } }> }
  t.equal(frame.oneOf.length, 4, 'start, progress, complete, error')
  const progress = frame.oneOf[1]!.properties
  t.match(progress.data, { type: 'object', properties: { n: { type: 'integer' } } }, 'progress carries the result schema')
  t.match(get.responses['200']!.description, /Server-Sent Events/)
  t.match(get.responses['204']!.description, /Last-Event-ID/)
  t.match(get, { tags: ['ticks'], summary: 'Stream ticks' })
  const cancel = paths['/ticks/{streamId}']!.delete!
  t.same(cancel.parameters?.map((p) => [p.in, p.name]), [['path', 'streamId']])
  t.same(Object.keys(cancel.responses).sort(), ['204', '404'])

  const post = paths['/jobs']!.post!
  t.ok(post.requestBody!.content['application/json']!.schema.properties.count, 'the command is the body')
  t.match(post.responses['202'], { content: { 'application/json': { schema: { required: ['streamId', 'url'] } } } })
  const stream = paths['/jobs/{streamId}']!.get!
  t.ok(stream.responses['200']!.content!['text/event-stream'], 'the stream url serves the frames')
  t.ok(stream.responses['404'], 'and may be gone')
  t.ok(paths['/jobs/{streamId}']!.delete, 'and can be cancelled')
  t.same(paths['/queues/{queue}/jobs/{streamId}']!.get!.parameters?.map((p) => [p.in, p.name, p.required]),
    [['query', 'lastEventId', false], ['path', 'queue', true], ['path', 'streamId', true], ['header', 'last-event-id', false]],
    'the route\'s own params come along')

  // Each generated route has its own summary; the POST keeps the route's.
  t.match(cancel, { summary: 'Cancel a running stream of /ticks', description: /FST_ERR_CQRS_STREAM_CANCELLED/, tags: ['ticks'] })
  t.match(stream, { summary: 'Stream a command accepted by POST /jobs' })
  t.same(post.parameters?.map((p) => [p.in, p.name]), [['query', 'lastEventId'], ['header', 'last-event-id']])
  t.ok(post.responses['400'], 'the POST documents its 400')
})

t.test('operationIds stay unique: the generated routes get their own', async (t) => {
  const { app } = await ticksApp(t)
  await app.register(swagger, { openapi: { info: { title: 'ticks', version: '1' } } })
  app.streamRoute({ method: 'POST', url: '/jobs', request: TicksCommand, response: Tick, twoStep: true, schema: { operationId: 'runJob', summary: 'Run a job' } })
  await app.ready()
  const paths = (app.swagger() as unknown as { paths: Paths }).paths
  t.match(paths['/jobs']!.post, { operationId: 'runJob', summary: 'Run a job' })
  t.match(paths['/jobs/{streamId}']!.get, { operationId: 'runJobStream', summary: 'Stream a command accepted by POST /jobs' })
  t.match(paths['/jobs/{streamId}']!.delete, { operationId: 'runJobCancel', summary: 'Cancel a running stream of /jobs' })
})
