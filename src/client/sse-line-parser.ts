// The event stream interpretation of the WHATWG HTML standard ("Server-sent
// events", "Interpreting an event stream"), for readers that get the body
// themselves (fetch) instead of through EventSource.

/** One dispatched event. */
export interface SseMessage {
  /** The `event:` field, `message` when there was none. */
  readonly type: string
  /** The `data:` lines joined with LF. */
  readonly data: string
  /** The last `id:` seen so far, in this event or an earlier one, as EventSource keeps it. */
  readonly lastEventId: string
}

const DIGITS = /^\d+$/

/**
 * Feed it decoded text chunk by chunk; it returns the events each chunk
 * completed. Lines end in CRLF, LF or CR, also across chunks; comments and
 * unknown fields are ignored, as are events without data.
 * @example
 * const parser = new SseLineParser((ms) => { retryMs = ms })
 * for (const message of parser.push(decoder.decode(bytes, { stream: true }))) handle(message)
 */
export class SseLineParser {
  readonly #onRetry: (ms: number) => void
  #pending = ''
  // The previous chunk ended in CR: an LF starting the next one ends no line.
  #skipLf = false
  #data = ''
  #type = ''
  #lastEventId = ''

  /** `onRetry` gets each valid `retry:` value, in ms. */
  constructor (onRetry: (ms: number) => void = () => {}) {
    this.#onRetry = onRetry
  }

  push (chunk: string): SseMessage[] {
    if (chunk === '') return []
    const text = this.#skipLf && chunk.startsWith('\n') ? chunk.slice(1) : chunk
    const input = this.#pending + text
    const messages: SseMessage[] = []
    const lineEnd = /\r\n|\r|\n/g
    let start = 0
    for (let match = lineEnd.exec(input); match !== null; match = lineEnd.exec(input)) {
      this.#line(input.slice(start, match.index), messages)
      start = lineEnd.lastIndex
    }
    this.#pending = input.slice(start)
    this.#skipLf = input.endsWith('\r')
    return messages
  }

  #line (line: string, messages: SseMessage[]): void {
    if (line === '') {
      this.#dispatch(messages)
      return
    }
    const colon = line.indexOf(':')
    if (colon === 0) return
    const field = colon === -1 ? line : line.slice(0, colon)
    const raw = colon === -1 ? '' : line.slice(colon + 1)
    const value = raw.startsWith(' ') ? raw.slice(1) : raw
    switch (field) {
      case 'event':
        this.#type = value
        break
      case 'data':
        this.#data += value + '\n'
        break
      case 'id':
        if (!value.includes('\0')) this.#lastEventId = value
        break
      case 'retry':
        if (DIGITS.test(value)) this.#onRetry(Number(value))
        break
    }
  }

  #dispatch (messages: SseMessage[]): void {
    if (this.#data !== '') {
      messages.push({ type: this.#type || 'message', data: this.#data.slice(0, -1), lastEventId: this.#lastEventId })
    }
    this.#data = ''
    this.#type = ''
  }
}
