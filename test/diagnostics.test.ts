import diagnosticsChannel from 'node:diagnostics_channel'
import t from 'tap'
import { Type } from '@sinclair/typebox'
import {
  bootstrapStreaming, channelNames, DomainEvent, EventHandler, Request, StreamingRequestHandler,
  type EventHandlerErrorMessage, type StreamEndMessage, type StreamStartMessage,
} from '../src/index.js'

class Run extends Request(Type.Object({ items: Type.Array(Type.String()) })) {}
class Seen extends DomainEvent(Type.Object({ item: Type.String() })) {}
class Produces extends StreamingRequestHandler<Run, string> {
  async * handle (command: Run): AsyncGenerator<string> {
    for (const item of command.items) {
      if (item === 'boom') throw new Error('handler failed')
      this.emit(new Seen({ item }))
      yield item
    }
  }
}
class FailsOnBad extends EventHandler<Seen> {
  handle (event: Seen): void {
    if (event.item === 'bad') throw new Error('event handler failed')
  }
}

function listen<T> (t: { teardown: (fn: () => void) => void }, name: string): T[] {
  const messages: T[] = []
  const onMessage = (message: unknown): void => { messages.push(message as T) }
  diagnosticsChannel.subscribe(name, onMessage)
  t.teardown(() => { diagnosticsChannel.unsubscribe(name, onMessage) })
  return messages
}

t.test('stream start and end, and failing event handlers, are published on diagnostics channels', async (t) => {
  const starts = listen<StreamStartMessage>(t, channelNames.streamStart)
  const ends = listen<StreamEndMessage>(t, channelNames.streamEnd)
  const eventErrors = listen<EventHandlerErrorMessage>(t, channelNames.eventHandlerError)
  const mediator = bootstrapStreaming({
    logger: { error () {}, warn () {} },
    requests: (map) => map.bind(Run, Produces),
    events: (map) => map.bind(Seen, FailsOnBad),
  })

  const ok = new Run({ items: ['a', 'bad'] })
  const results: string[] = []
  for await (const item of mediator.stream<string>(ok, { streamId: 'ok' })) results.push(item)
  t.same(results, ['a', 'bad'], 'an isolated event handler failure does not stop the stream')

  const failing = new Run({ items: ['boom'] })
  await t.rejects(mediator.stream(failing, { streamId: 'failing' }).next(), /handler failed/)

  t.same(starts.map(({ streamId, request }) => [streamId, request]), [['ok', ok], ['failing', failing]])
  t.equal(ends.length, 2)
  t.same([ends[0]?.streamId, ends[0]?.request, ends[0]?.error], ['ok', ok, undefined])
  t.same([ends[1]?.streamId, ends[1]?.request], ['failing', failing])
  t.match(ends[1]?.error, { message: 'handler failed' })
  t.equal(eventErrors.length, 1)
  t.match(eventErrors[0], { eventName: 'Seen', handlerName: 'FailsOnBad', streamId: 'ok', error: { message: 'event handler failed' } })
  t.equal(eventErrors[0]?.event.constructor, Seen)
})
