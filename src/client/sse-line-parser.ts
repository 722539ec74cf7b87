// The event stream interpretation of the WHATWG HTML standard ("Server-sent
// events", "Interpreting an event stream"), for readers that get the body
// themselves (fetch) instead of through EventSource.
//
// Each character is scanned once, whatever the chunking: an unfinished line
// is kept as the pieces that arrived and joined once, when its end comes.
// Re-joining and re-scanning it on every chunk made one long line cost the
// square of its length.

import { frameTooLarge, type StreamCommandError } from './client-errors.js'

/** One dispatched event. */
export interface SseMessage {
  /** The `event:` field, `message` when there was none. */
  readonly type: string
  /** The `data:` lines joined with LF. */
  readonly data: string
  /** The last `id:` seen so far, in this event or an earlier one, as EventSource keeps it. */
  readonly lastEventId: string
}

/**
 * Options of {@link SseLineParser}.
 * @example
 * new SseLineParser({ onRetry: (ms) => { retryMs = ms }, maxFrameLength: 1024 * 1024 })
 */
export interface SseLineParserOptions {
  /** Gets each valid `retry:` value, in ms. */
  readonly onRetry?: (ms: number) => void
  /**
   * The most characters one event may hold (its unfinished line and its
   * data so far). Past it the parser stops: `push()` returns the events
   * completed before that point, then nothing, and `error` is set
   * (`FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE`).
   * @default Infinity
   */
  readonly maxFrameLength?: number
}

const DIGITS = /^\d+$/
const LF = 10
const SPACE = 32
const COLON = 58
const D = 100
const E = 101
const I = 105
const R = 114
const BOM = 0xfeff

function ignore (): void {}

/**
 * Feed it decoded text chunk by chunk; it returns the events each chunk
 * completed. Lines end in CRLF, LF or CR, also across chunks; a leading BOM,
 * comments and unknown fields are ignored, as are events without data.
 * @example
 * const parser = new SseLineParser({ onRetry: (ms) => { retryMs = ms } })
 * for (const message of parser.push(decoder.decode(bytes, { stream: true }))) handle(message)
 */
export class SseLineParser {
  readonly #onRetry: (ms: number) => void
  readonly #maxFrameLength: number
  // The unfinished line, as the pieces that brought it.
  #pieces: string[] = []
  #piecesLength = 0
  #first = true
  // The previous chunk ended in CR: an LF starting the next one ends no line.
  #skipLf = false
  // The data lines so far, joined with LF; #hasData tells one empty line from none.
  #data = ''
  #hasData = false
  #type = ''
  #lastEventId = ''
  #error: StreamCommandError | undefined

  constructor (options: SseLineParserOptions = {}) {
    this.#onRetry = options.onRetry ?? ignore
    this.#maxFrameLength = options.maxFrameLength ?? Infinity
  }

  /** Set once an event grew past `maxFrameLength`; the parser then takes no more input. */
  get error (): StreamCommandError | undefined {
    return this.#error
  }

  push (chunk: string): SseMessage[] {
    const messages: SseMessage[] = []
    const length = chunk.length
    if (length === 0 || this.#error !== undefined) return messages
    let start = 0
    if (this.#first) {
      this.#first = false
      if (chunk.charCodeAt(0) === BOM) start = 1
    }
    if (this.#skipLf) {
      this.#skipLf = false
      if (chunk.charCodeAt(start) === LF) start++
    }
    let cr = chunk.indexOf('\r', start)
    let lf = chunk.indexOf('\n', start)
    while (cr !== -1 || lf !== -1) {
      let end: number
      let next: number
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        end = lf
        next = lf + 1
      } else {
        end = cr
        next = cr + 1
        if (next === length) this.#skipLf = true
        else if (chunk.charCodeAt(next) === LF) next++
      }
      if (this.#piecesLength === 0) {
        this.#line(chunk, start, end, messages)
      } else {
        this.#pieces.push(chunk.slice(start, end))
        const line = this.#pieces.join('')
        this.#pieces = []
        this.#piecesLength = 0
        this.#line(line, 0, line.length, messages)
      }
      if (this.#error !== undefined) return messages
      start = next
      if (cr !== -1 && cr < start) cr = chunk.indexOf('\r', start)
      if (lf !== -1 && lf < start) lf = chunk.indexOf('\n', start)
    }
    if (start < length) {
      const rest = start === 0 ? chunk : chunk.slice(start)
      this.#pieces.push(rest)
      this.#piecesLength += rest.length
      this.#checkLength(this.#piecesLength)
    }
    return messages
  }

  #checkLength (unfinished: number): void {
    if (this.#data.length + unfinished <= this.#maxFrameLength) return
    // Dropped: the parser is done with this stream.
    this.#pieces = []
    this.#piecesLength = 0
    this.#data = ''
    this.#error = frameTooLarge(this.#maxFrameLength)
  }

  // The line is text[start, end): read in place, so that only a value is
  // ever copied out of the chunk.
  #line (text: string, start: number, end: number, messages: SseMessage[]): void {
    if (start === end) {
      this.#dispatch(messages)
      return
    }
    const first = text.charCodeAt(start)
    if (first === COLON) return
    // The fields we know are at most 5 characters: the colon, if the line
    // is one of them, is within its first 6 (no scan of a long value).
    let colon = -1
    for (let i = start, limit = Math.min(end, start + 6); i < limit; i++) {
      if (text.charCodeAt(i) === COLON) {
        colon = i
        break
      }
    }
    let fieldEnd = end
    let valueStart = end
    if (colon !== -1) {
      fieldEnd = colon
      valueStart = colon + 1 < end && text.charCodeAt(colon + 1) === SPACE ? colon + 2 : colon + 1
    }
    const fieldLength = fieldEnd - start
    if (first === D && fieldLength === 4 && text.startsWith('data', start)) {
      const value = text.slice(valueStart, end)
      if (this.#hasData) this.#data = this.#data + '\n' + value
      else {
        this.#data = value
        this.#hasData = true
      }
      this.#checkLength(0)
    } else if (first === E && fieldLength === 5 && text.startsWith('event', start)) {
      this.#type = text.slice(valueStart, end)
    } else if (first === I && fieldLength === 2 && text.startsWith('id', start)) {
      const value = text.slice(valueStart, end)
      if (!value.includes('\0')) this.#lastEventId = value
    } else if (first === R && fieldLength === 5 && text.startsWith('retry', start)) {
      const value = text.slice(valueStart, end)
      if (DIGITS.test(value)) this.#onRetry(Number(value))
    }
  }

  #dispatch (messages: SseMessage[]): void {
    if (this.#hasData) {
      messages.push({ type: this.#type || 'message', data: this.#data, lastEventId: this.#lastEventId })
      this.#data = ''
      this.#hasData = false
    }
    this.#type = ''
  }
}
