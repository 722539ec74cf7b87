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
export class FrameEncoder<T> {
  #seq = 0
  readonly #idPrefix: string
  readonly #progressHead: string
  readonly #serialize: Serializer<T>
  readonly #untrusted: boolean
  readonly #named: boolean
  readonly #startFrame: string

  constructor (options: FrameEncoderOptions<T>) {
    if (typeof options.streamId !== 'string' || !isSafeFieldValue(options.streamId)) {
      throw new InvalidOptionError('streamId', 'must be a string without CR, LF or NUL')
    }
    this.#idPrefix = `id: ${options.streamId}:`
    this.#named = options.namedEvents === true
    this.#progressHead = `\n${this.#named ? 'event: progress\n' : ''}data: {"type":"progress","data":`
    this.#serialize = options.serialize ?? jsonStringify
    this.#untrusted = options.untrusted === true
    const retry = options.retryMs === undefined ? '' : `retry: ${Math.trunc(options.retryMs)}\n`
    const cancel = options.cancelUrl === undefined ? '' : `,"cancelUrl":${JSON.stringify(options.cancelUrl)}`
    this.#startFrame = this.#frame('start', `{"type":"start","streamId":${JSON.stringify(options.streamId)}${cancel}}`, retry)
  }

  /** The `seq` the next frame will carry. */
  get nextSeq (): number { return this.#seq }

  start (): string { return this.#startFrame }

  progress (item: T): string {
    let json: string
    try {
      json = this.#serialize(item)
    } catch (error) {
      throw new SerializationError({ cause: error })
    }
    if (this.#untrusted && (typeof json !== 'string' || /[\r\n]/.test(json))) throw new SerializationError()
    return this.#idPrefix + this.#seq++ + this.#progressHead + json + '}\n\n'
  }

  complete (): string { return this.#frame('complete', '{"type":"complete"}', '') }

  error (error: PublicError): string {
    return this.#frame('error', JSON.stringify({ type: 'error', error: { code: error.code, message: error.message } }), '')
  }

  #frame (name: string, json: string, extra: string): string {
    return `${this.#idPrefix}${this.#seq++}\n${this.#named ? `event: ${name}\n` : ''}${extra}${encodeData(json)}\n`
  }
}
