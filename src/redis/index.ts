export { RedisStreamStore } from './redis-stream-store.js'
export type { RedisStoreLogger, RedisStreamStoreOptions } from './redis-store-options.js'
export type { SharedStreamStore, StreamSignal, StoredFrame, StoredStream, StreamLogOptions, StreamStore } from '../resume/stream-store.js'
