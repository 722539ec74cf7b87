import { InvalidOptionError, SerializationError } from '../errors.js'
import { encodeData, isSafeFieldValue } from './frame.js'
import type { PublicError } from './public-error.js'

/** Turns one item into single-line JSON for a `progress` frame. */
export type Serializer<T> = (item: T) => string

export interface FrameEncoderOptions<T> {
  readonly streamId: string
  /** Compiled from the response schema by `streamRoute`; `JSON.stringify` otherwise. */
  readonly serialize?: Serializer<T> | undefined
  /** True when `serialize` is the caller's own, whose output is checked for line breaks. */
  readonly untrusted?: boolean
  /** Add `event: start|progress|complete|error` lines. */
  readonly namedEvents?: boolean | undefined
  /** A `retry:` hint in the start frame, in ms. */
  readonly retryMs?: number | undefined
  /** Where the client can `DELETE` a resumable stream, sent in the start frame. */
  readonly cancelUrl?: string | undefined
  /** The `seq` of the first frame after the start frame. @default 1 */
  readonly nextSeq?: number | undefined
}

function jsonStringify (item: unknown): string {
  // JSON.stringify yields undefined for undefined and functions: send null.
  return JSON.stringify(item) ?? 'null'
}

/**
 * Encodes the frames of one stream: `start`, `progress` per item,
 * `complete`, or `error`, each with the id `<streamId>:<seq>`. Prefixes are
 * built once per stream; JSON output never holds a raw CR or LF, so only a
 * caller's own serialiser pays for a line-break check.
 */
// Shared by every stream: only the id line differs between streams.
const PROGRESS_HEAD = '\ndata: {"type":"progress","data":'
const NAMED_PROGRESS_HEAD = '\nevent: progress\ndata: {"type":"progress","data":'

export class FrameEncoder<T> {
  // 0 is the start frame's.
  #seq = 1
  readonly #options: FrameEncoderOptions<T>
  readonly #idPrefix: string
  readonly #progressHead: string
  readonly #serialize: Serializer<T>
  readonly #untrusted: boolean
  readonly #named: boolean

  constructor (options: FrameEncoderOptions<T>) {
    if (typeof options.streamId !== 'string' || !isSafeFieldValue(options.streamId)) {
      throw new InvalidOptionError('streamId', 'must be a string without CR, LF or NUL')
    }
    this.#options = options
    this.#seq = options.nextSeq ?? 1
    this.#idPrefix = `id: ${options.streamId}:`
    this.#named = options.namedEvents === true
    this.#progressHead = this.#named ? NAMED_PROGRESS_HEAD : PROGRESS_HEAD
    this.#serialize = options.serialize ?? jsonStringify
    this.#untrusted = options.untrusted === true
  }

  /** The `seq` the next frame will carry. */
  get nextSeq (): number { return this.#seq }

  /** The first frame; built when sent, so a running stream does not keep it. */
  start (): string {
    const { streamId, retryMs, cancelUrl } = this.#options
    const retry = retryMs === undefined ? '' : `retry: ${Math.trunc(retryMs)}\n`
    const cancel = cancelUrl === undefined ? '' : `,"cancelUrl":${JSON.stringify(cancelUrl)}`
    return this.#frame(0, 'start', `{"type":"start","streamId":${JSON.stringify(streamId)}${cancel}}`, retry)
  }

  progress (item: T): string {
    let json: string
    try {
      json = this.#serialize(item)
    } catch (error) {
      if (error instanceof SerializationError) throw error
      // pino's error serialiser adds the cause's message to the log line.
      throw new SerializationError('a streamed item could not be serialised to JSON (yield plain data)', { cause: error })
    }
    if (this.#untrusted && (typeof json !== 'string' || /[\r\n]/.test(json))) {
      throw new SerializationError('the serialize option returned something other than single-line JSON')
    }
    return this.#idPrefix + this.#seq++ + this.#progressHead + json + '}\n\n'
  }

  complete (): string { return this.#frame(this.#seq++, 'complete', '{"type":"complete"}', '') }

  error (error: PublicError): string {
    return this.#frame(this.#seq++, 'error', JSON.stringify({ type: 'error', error: { code: error.code, message: error.message } }), '')
  }

  #frame (seq: number, name: string, json: string, extra: string): string {
    return `${this.#idPrefix}${seq}\n${this.#named ? `event: ${name}\n` : ''}${extra}${encodeData(json)}\n`
  }
}

/**
 * An `error` frame of `streamId` with `seq`, encoded as a FrameEncoder of
 * that stream would: for frames that another instance than the stream's
 * own writes (its owner is gone).
 */
export function errorFrame (streamId: string, seq: number, error: PublicError, namedEvents: boolean): string {
  return new FrameEncoder({ streamId, namedEvents, nextSeq: seq }).error(error)
}
