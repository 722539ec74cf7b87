import type { RequestMessage, ResultOf } from '../messages/request.js'
import { EventCollector } from './event-collector.js'
import type { StreamContext } from './stream-context.js'

/**
 * A streaming command handler: `handle()` is an async generator; each
 * yielded value becomes a `progress` frame. Events emitted while producing
 * an item are handled before that item reaches the consumer. Built per
 * stream from the stream's Awilix scope, so constructor dependencies come
 * from the container. The result type comes from the request class's
 * `result` (a handler yielding anything else does not compile); for a
 * request declared without one, give it as the second type argument.
 * @example
 * class ProcessOrdersHandler extends StreamingRequestHandler<ProcessOrdersCommand> {
 *   constructor (private readonly deps: { orders: OrderService }) { super() }
 *   async * handle (command: ProcessOrdersCommand, { signal }: StreamContext) {
 *     for (const id of command.orderIds) {
 *       const order = await this.deps.orders.process(id, { signal })
 *       this.emit(new OrderProcessedEvent({ orderId: id, totalAmount: order.total }))
 *       yield new OrderProcessedResult({ orderId: id, status: 'processed' })
 *     }
 *   }
 * }
 */
export abstract class StreamingRequestHandler<
  TRequest extends RequestMessage = RequestMessage,
  TResult extends ResultOf<TRequest> = ResultOf<TRequest>
>
  extends EventCollector {
  abstract handle (request: TRequest, context: StreamContext): AsyncIterable<TResult>
}

/** A class whose instances are streaming handlers; the container builds it. */
export type StreamingRequestHandlerClass<TRequest extends RequestMessage = RequestMessage, TResult extends ResultOf<TRequest> = ResultOf<TRequest>> =
  new (...args: never[]) => StreamingRequestHandler<TRequest, TResult>
