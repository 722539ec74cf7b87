import { pathToFileURL } from 'node:url'
import { streamCommand, StreamCommandError } from '../src/client/index.js'
import type { ProcessOrdersCommand } from './messages.js'

// `npm run client -- a b c` (with `npm start` running): the typed client in
// Node. A type-only import of the server's command class types the body
// (a wrong field does not compile) and each progress frame's data (the
// result's plain JSON); `baseUrl` resolves the route's relative url.

/** One line per frame of a run of the orders command against `baseUrl`. */
export async function * orderLines (baseUrl: string, orderIds: string[]): AsyncGenerator<string> {
  const frames = streamCommand<typeof ProcessOrdersCommand>('/orders/process', { baseUrl, body: { orderIds } })
  for await (const frame of frames) {
    if (frame.type === 'start') yield `stream ${frame.streamId}`
    if (frame.type === 'progress') yield `${frame.data.orderId}: ${frame.data.status}, ${frame.data.itemsCount} item(s)`
    if (frame.type === 'complete') yield 'complete'
  }
}

/** The script: order ids from the arguments, the server from BASE_URL; resolves to the exit code. */
export async function main (args: string[], baseUrl = 'http://127.0.0.1:3000', out: Pick<Console, 'log' | 'error'> = console): Promise<number> {
  try {
    for await (const line of orderLines(baseUrl, args.length > 0 ? args : ['a', 'b', 'c'])) out.log(line)
    return 0
  } catch (error) {
    // A coded error: FST_ERR_VALIDATION for a bad command, FST_ERR_CQRS_STREAM_LOST for a server that went away…
    out.error(error instanceof StreamCommandError ? `${error.code}: ${error.message}` : error)
    return 1
  }
}

/* c8 ignore next 3 -- run as a script (npm run client); main() is tested */
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2), process.env.BASE_URL)
}
