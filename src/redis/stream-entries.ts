import type { StoredFrame } from '../resume/stream-store.js'
import type { Entry } from './shared-reader.js'

// Frame `seq` is stored under the entry id `0-<seq + 1>` (Redis refuses
// `0-0`, and the start frame is seq 0), so XRANGE and XREAD find the frames
// after a seq by id. The end of a stream is the entry `1-0`, greater than
// every frame's: `end` when its last frame is in, `aborted` when it was
// deleted.
export const END_ID = '1-0'

/** The entry id of frame `seq`; for `seq` -1, the id before every frame. */
export const entryId = (seq: number): string => `0-${seq + 1}`

/** The frames of `entries` and what their end marker says. */
export function decode (entries: readonly Entry[]): { frames: StoredFrame[], marker: string | undefined } {
  const frames: StoredFrame[] = []
  let marker: string | undefined
  for (const [id, fields] of entries) {
    if (id === END_ID) marker = fields[0]
    else frames.push({ seq: Number(id.slice(2)) - 1, text: fields[1]! })
  }
  return { frames, marker }
}
