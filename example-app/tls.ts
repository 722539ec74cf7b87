import { readFile } from 'node:fs/promises'
import selfsigned from 'selfsigned'

/**
 * The key and certificate of `HTTPS=1 npm start`: TLS_KEY and TLS_CERT (PEM
 * files) when both are set, else a self-signed certificate for localhost
 * and 127.0.0.1, made now and valid for a week (browsers warn about it:
 * accept it once). Undefined without HTTPS=1: plain HTTP.
 */
export async function tlsFromEnv (env: NodeJS.ProcessEnv): Promise<{ key: string, cert: string } | undefined> {
  if (env.HTTPS !== '1' && env.HTTPS !== 'true') return undefined
  if (env.TLS_KEY !== undefined && env.TLS_CERT !== undefined) {
    return { key: await readFile(env.TLS_KEY, 'utf8'), cert: await readFile(env.TLS_CERT, 'utf8') }
  }
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 7 * 86_400_000),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
  })
  return { key: pems.private, cert: pems.cert }
}
