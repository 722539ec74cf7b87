// Low-level Server-Sent Events field encoding (WHATWG HTML, "Server-sent
// events"). A line may end in CR, LF or CRLF, so no value may carry one
// unescaped: `data` is split into several `data:` lines, and `id`/`event`
// refuse them.

const LINE_BREAK = /\r\n|\r|\n/
const FORBIDDEN_IN_ID = /[\r\n\0]/

/** One SSE event, before encoding. */
export interface SseEvent {
  readonly id?: string | undefined
  readonly event?: string | undefined
  readonly data: string
  readonly retry?: number | undefined
}

/** True when `value` can be sent as an `id:` or `event:` field. */
export function isSafeFieldValue (value: string): boolean {
  return !FORBIDDEN_IN_ID.test(value)
}

/** Encodes one event, ending in the blank line that dispatches it. */
export function encodeEvent (event: SseEvent): string {
  let out = ''
  if (event.id !== undefined) out += `id: ${checked('id', event.id)}\n`
  if (event.event !== undefined) out += `event: ${checked('event', event.event)}\n`
  if (event.retry !== undefined) out += `retry: ${Math.trunc(event.retry)}\n`
  out += encodeData(event.data)
  return out + '\n'
}

/** `data:` lines for `data`; a multi-line value becomes several lines that the client joins with LF. */
export function encodeData (data: string): string {
  if (!LINE_BREAK.test(data)) return `data: ${data}\n`
  let out = ''
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`
  return out
}

/** A comment line: ignored by clients, keeps proxies and load balancers from cutting an idle stream. */
export const HEARTBEAT = ':\n\n'

function checked (field: string, value: string): string {
  if (!isSafeFieldValue(value)) throw new TypeError(`SSE ${field} must not contain CR, LF or NUL`)
  return value
}
