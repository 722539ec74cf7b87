// cluster-key-slot ships no types: its one export, as ioredis uses it.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0–16383) of `key`, after its hash tag. */
  export default function calculateSlot (key: string | Buffer): number
}
