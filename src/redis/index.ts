export { RedisStreamStore } from './redis-stream-store.js'
export type { RedisStoreLogger, RedisStreamStoreOptions } from './redis-store-options.js'
export type { FollowOptions, SharedStreamStore, StoredCommand, StreamSignal, StoredFrame, StoredStream, StreamLogOptions, StreamStore, TakenCommand } from '../resume/stream-store.js'
