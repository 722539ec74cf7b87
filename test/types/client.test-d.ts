// Type tests of the client, fastify-cqrs-stream/client (see expect.ts).
import { streamCommand, StreamCommandError, type EventSourceConstructor, type StreamFrame } from '../../src/client/index.js'
import { expectExact, expectTrue, use, type Equal } from './expect.js'

interface OrderResult { orderId: string, itemsCount: number }

async function consume (): Promise<void> {
  for await (const frame of streamCommand<OrderResult>('/orders/process', { body: { orderIds: ['a'] } })) {
    expectTrue<Equal<typeof frame, StreamFrame<OrderResult>>>()
    // The type narrows each frame; progress data is the result type.
    if (frame.type === 'progress') expectExact<OrderResult>()(frame.data)
    if (frame.type === 'start') expectExact<string>()(frame.streamId)
    expectExact<string>()(frame.id)
    // @ts-expect-error error frames are thrown, never yielded
    if (frame.type === 'error') use(frame)
  }
  // Without a type argument, progress data is unknown.
  for await (const frame of streamCommand(new URL('http://localhost/x'))) {
    if (frame.type === 'progress') expectExact<unknown>()(frame.data)
  }
}

try {
  await consume()
} catch (error) {
  if (error instanceof StreamCommandError) {
    expectExact<string>()(error.code)
    expectExact<number | undefined>()(error.statusCode)
    expectExact<string | undefined>()(error.streamId)
  }
}

// A WHATWG-like EventSource class fits the option.
class MyEventSource {
  readonly readyState: number = 0
  constructor (readonly url: string) {}
  addEventListener (_type: string, _listener: (event: { data?: unknown, lastEventId?: string }) => void): void {}
  close (): void {}
}
use(streamCommand('/x', { EventSource: MyEventSource, maxReconnects: 3, onReconnecting: ({ attempt, lastEventId }) => use(attempt, lastEventId) }))
use(streamCommand('/x', { EventSource: MyEventSource satisfies EventSourceConstructor }))
// @ts-expect-error GET or POST only
use(streamCommand('/x', { method: 'PUT' }))
// @ts-expect-error headers are strings
use(streamCommand('/x', { headers: { 'x-n': 1 } }))
