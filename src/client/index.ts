// fastify-cqrs-stream/client: a browser-safe (plain ESM, no dependencies,
// no Node built-ins) client for the streams of fastify-cqrs-stream.
export { streamCommand, type ResumePoint, type StreamCommandOptions } from './stream-command.js'
export type { StreamFrame, StartFrame, ProgressFrame, CompleteFrame, ErrorFrame } from './frames.js'
export type { ReconnectInfo } from './stream-state.js'
export type { BodyOf, DataOf, ProgressOf, ResultDataOf } from './command-types.js'
export type { EventSourceConstructor, EventSourceLike, EventSourceEventLike } from './event-source-connection.js'
export {
  StreamCommandError, FRAME_TOO_LARGE, INVALID_OPTION, INVALID_URL, STREAM_HTTP, STREAM_LOST, STREAM_PROTOCOL, type StreamCommandErrorOptions,
} from './client-errors.js'
