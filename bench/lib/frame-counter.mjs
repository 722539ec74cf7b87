// Counts SSE frames in a body read chunk by chunk, without parsing them: a
// frame is counted by its `data:` field, so comments (heartbeats) are not.

const DATA = 'data:'
const COMPLETE = '"type":"complete"'
const KEEP = COMPLETE.length - 1

// Matches of `needle` in `text` starting at or after `from`.
function occurrences (text, needle, from) {
  let count = 0
  let at = text.indexOf(needle, from)
  while (at !== -1) {
    count++
    at = text.indexOf(needle, at + needle.length)
  }
  return count
}

/** Frame and complete counts of one stream; `push` every decoded chunk. */
export class FrameCounter {
  frames = 0
  completes = 0
  bytes = 0
  #tail = ''

  push (chunk) {
    this.bytes += chunk.length
    // The tail carries a needle cut by the chunk boundary; a match lying
    // wholly inside it was counted with the previous chunk.
    const tail = this.#tail
    const text = tail + chunk
    this.frames += occurrences(text, DATA, Math.max(0, tail.length - DATA.length + 1))
    this.completes += occurrences(text, COMPLETE, Math.max(0, tail.length - COMPLETE.length + 1))
    this.#tail = text.slice(-KEEP)
  }
}

/** Calls `onItem` with each progress frame's orderId (the live case stamps it with a time). */
export class OrderIdScanner {
  #rest = ''

  push (chunk, onItem) {
    const text = this.#rest + chunk
    let from = 0
    for (;;) {
      const end = text.indexOf('\n\n', from)
      if (end === -1) break
      const at = text.indexOf('"orderId":"', from)
      if (at !== -1 && at < end) {
        const start = at + 11
        onItem(text.slice(start, text.indexOf('"', start)))
      }
      from = end + 2
    }
    this.#rest = text.slice(from)
  }
}
