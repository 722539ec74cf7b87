// The event stream interpretation of the WHATWG HTML standard ("Server-sent
// events", "Interpreting an event stream"), for readers that get the body
// themselves (fetch) instead of through EventSource.
//
// Each character is scanned once, whatever the chunking: an unfinished line
// is kept as the pieces that arrived and joined once, when its end comes.
// Re-joining and re-scanning it on every chunk made one long line cost the
// square of its length. Lines are read in place (only values are copied
// out of a chunk), a chunk without CR takes a loop that looks for LF only,
// and events go to a callback: this runs for every byte of every stream.

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
 * new SseLineParser({ onMessage: (message) => handle(message), maxFrameLength: 1024 * 1024 })
 */
export interface SseLineParserOptions {
  /** Gets each event, in order, while `push()` runs. */
  readonly onMessage: (message: SseMessage) => void
  /** Gets each valid `retry:` value, in ms. */
  readonly onRetry?: (ms: number) => void
  /**
   * The most characters one event may hold (its unfinished line and its
   * data so far). Past it the parser stops: the events completed before
   * that point are delivered, none after, and `error` is set
   * (`FST_ERR_CQRS_STREAM_FRAME_TOO_LARGE`).
   * @default Infinity
   */
  readonly maxFrameLength?: number
}

const DIGITS = /^\d+$/
const LF = 10
const SPACE = 32
const COLON = 58
const BOM = 0xfeff
const LOWER_A = 97
const LOWER_D = 100
const LOWER_E = 101
const LOWER_I = 105
const LOWER_N = 110
const LOWER_R = 114
const LOWER_T = 116
const LOWER_V = 118
const LOWER_Y = 121

function ignore (): void {}

/** True when the name ending at `after` is followed by a colon or by the line's `end`. */
function nameEnds (text: string, after: number, end: number): boolean {
  return after === end || (after < end && text.charCodeAt(after) === COLON)
}

/** Where the value starts of a field whose name ends at `at`: after the colon and one space. */
function valueStart (text: string, at: number, end: number): number {
  if (at === end) return end
  return at + 1 < end && text.charCodeAt(at + 1) === SPACE ? at + 2 : at + 1
}

// Each tells whether the line text[start, end), whose first character was
// checked by the caller, is that field: written out, as this runs per line.
function isData (text: string, start: number, end: number): boolean {
  return text.charCodeAt(start + 1) === LOWER_A && text.charCodeAt(start + 2) === LOWER_T &&
    text.charCodeAt(start + 3) === LOWER_A && nameEnds(text, start + 4, end)
}

function isEvent (text: string, start: number, end: number): boolean {
  return text.charCodeAt(start + 1) === LOWER_V && text.charCodeAt(start + 2) === LOWER_E &&
    text.charCodeAt(start + 3) === LOWER_N && text.charCodeAt(start + 4) === LOWER_T && nameEnds(text, start + 5, end)
}

function isRetry (text: string, start: number, end: number): boolean {
  return text.charCodeAt(start + 1) === LOWER_E && text.charCodeAt(start + 2) === LOWER_T &&
    text.charCodeAt(start + 3) === LOWER_R && text.charCodeAt(start + 4) === LOWER_Y && nameEnds(text, start + 5, end)
}

/**
 * Feed it decoded text chunk by chunk; it calls `onMessage` with each event
 * a chunk completes. Lines end in CRLF, LF or CR, also across chunks; a
 * leading BOM, comments and unknown fields are ignored, as are events
 * without data.
 * @example
 * const parser = new SseLineParser({ onMessage: handle, onRetry: (ms) => { retryMs = ms } })
 * parser.push(decoder.decode(bytes, { stream: true }))
 */
export class SseLineParser {
  readonly #onMessage: (message: SseMessage) => void
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

  constructor (options: SseLineParserOptions) {
    this.#onMessage = options.onMessage
    this.#onRetry = options.onRetry ?? ignore
    this.#maxFrameLength = options.maxFrameLength ?? Infinity
  }

  /** Set once an event grew past `maxFrameLength`; the parser then takes no more input. */
  get error (): StreamCommandError | undefined {
    return this.#error
  }

  push (chunk: string): void {
    const length = chunk.length
    if (length === 0 || this.#error !== undefined) return
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
    if (cr === -1) {
      while (lf !== -1) {
        if (this.#piecesLength !== 0) this.#joinedLine(chunk, start, lf)
        else if (lf === start) this.#dispatch()
        else if (!this.#hasData && chunk.charCodeAt(lf + 1) === LF && chunk.charCodeAt(start) === LOWER_D && isData(chunk, start, lf) &&
          lf - start <= this.#maxFrameLength) {
          // A one-line event, the usual frame: its data is the value, no join.
          this.#emit(chunk.slice(valueStart(chunk, start + 4, lf), lf))
          start = lf + 2
          lf = chunk.indexOf('\n', start)
          continue
        } else this.#line(chunk, start, lf)
        if (this.#error !== undefined) return
        start = lf + 1
        // A blank line (the end of every event) needs no search.
        lf = chunk.charCodeAt(start) === LF ? start : chunk.indexOf('\n', start)
      }
    } else {
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
        if (this.#piecesLength !== 0) this.#joinedLine(chunk, start, end)
        else this.#line(chunk, start, end)
        if (this.#error !== undefined) return
        start = next
        if (cr !== -1 && cr < start) cr = chunk.indexOf('\r', start)
        if (lf !== -1 && lf < start) lf = chunk.indexOf('\n', start)
      }
    }
    if (start < length) {
      const rest = start === 0 ? chunk : chunk.slice(start)
      this.#pieces.push(rest)
      this.#piecesLength += rest.length
      this.#checkLength(this.#piecesLength)
    }
  }

  /** The line that started in earlier chunks ends at chunk[end]: joined once, here. */
  #joinedLine (chunk: string, start: number, end: number): void {
    this.#pieces.push(chunk.slice(start, end))
    const line = this.#pieces.join('')
    this.#pieces = []
    this.#piecesLength = 0
    this.#line(line, 0, line.length)
  }

  #checkLength (unfinished: number): void {
    if (this.#data.length + unfinished <= this.#maxFrameLength) return
    // Dropped: the parser is done with this stream.
    this.#pieces = []
    this.#piecesLength = 0
    this.#data = ''
    this.#error = frameTooLarge(this.#maxFrameLength)
  }

  // The line is text[start, end), read in place.
  #line (text: string, start: number, end: number): void {
    if (start === end) {
      this.#dispatch()
      return
    }
    switch (text.charCodeAt(start)) {
      case LOWER_D:
        if (isData(text, start, end)) {
          const value = text.slice(valueStart(text, start + 4, end), end)
          if (this.#hasData) this.#data = this.#data + '\n' + value
          else {
            this.#data = value
            this.#hasData = true
          }
          this.#checkLength(0)
        }
        break
      case LOWER_E:
        if (isEvent(text, start, end)) this.#type = text.slice(valueStart(text, start + 5, end), end)
        break
      case LOWER_I:
        if (text.charCodeAt(start + 1) === LOWER_D && nameEnds(text, start + 2, end)) {
          const value = text.slice(valueStart(text, start + 2, end), end)
          if (!value.includes('\0')) this.#lastEventId = value
        }
        break
      case LOWER_R:
        if (isRetry(text, start, end)) {
          const value = text.slice(valueStart(text, start + 5, end), end)
          if (DIGITS.test(value)) this.#onRetry(Number(value))
        }
        break
    }
  }

  #dispatch (): void {
    if (!this.#hasData) {
      this.#type = ''
      return
    }
    const data = this.#data
    this.#data = ''
    this.#hasData = false
    this.#emit(data)
  }

  #emit (data: string): void {
    const type = this.#type
    this.#type = ''
    this.#onMessage({ type: type === '' ? 'message' : type, data, lastEventId: this.#lastEventId })
  }
}
