// Low-level Server-Sent Events field encoding (WHATWG HTML, "Server-sent
// events"). A line may end in CR, LF or CRLF, so no value may carry one
// unescaped: `data` is split into several `data:` lines, and an `id` or
// `event` value holding one is refused.

const LINE_BREAK = /\r\n|\r|\n/
const FORBIDDEN_IN_ID = /[\r\n\0]/

/** True when `value` can be sent as an `id:` or `event:` field. */
export function isSafeFieldValue (value: string): boolean {
  return !FORBIDDEN_IN_ID.test(value)
}

/** `data:` lines for `data`; a multi-line value becomes several lines that the client joins with LF. */
export function encodeData (data: string): string {
  if (!LINE_BREAK.test(data)) return `data: ${data}\n`
  let out = ''
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`
  return out
}

/** A comment line: ignored by clients, keeps proxies and load balancers from cutting an idle stream. */
export const HEARTBEAT = ':\n'
