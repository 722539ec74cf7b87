import type { Options } from 'amqplib'

/**
 * The broker's address for errors and logs, with the password replaced by
 * `***`: `amqp://user:***@host:5672/vhost`. The query string is left out.
 */
export function brokerAddress (url: string | Options.Connect): string {
  if (typeof url !== 'string') {
    const protocol = url.protocol ?? 'amqp'
    const port = url.port ?? (protocol === 'amqps' ? 5671 : 5672)
    return `${protocol}://${url.username ?? 'guest'}@${url.hostname ?? 'localhost'}:${port}/${url.vhost ?? ''}`
  }
  // An unparsable string may hold a password anywhere: none of it is shown.
  if (!URL.canParse(url)) return '(an unparsable URL)'
  const parsed = new URL(url)
  if (parsed.password !== '') parsed.password = '***'
  parsed.search = ''
  return parsed.href
}
