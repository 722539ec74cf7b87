import { readdir, readFile } from 'node:fs/promises'
import ts from 'typescript'

// The page imports the client (src/client/, the package's
// `fastify-cqrs-stream/client`) straight from this server: no bundler and
// no build step. Each file is transpiled once, on first use; the client's
// imports already end in `.js`, so the browser resolves them to
// /client/<file>.js as they are.
const CLIENT_DIR = new URL('../src/client/', import.meta.url)

let modules: Promise<ReadonlyMap<string, string>> | undefined

async function transpileAll (): Promise<ReadonlyMap<string, string>> {
  const names = (await readdir(CLIENT_DIR)).filter((name) => name.endsWith('.ts')).sort()
  const entries = await Promise.all(names.map(async (name): Promise<[string, string]> => {
    const source = await readFile(new URL(name, CLIENT_DIR), 'utf8')
    const { outputText } = ts.transpileModule(source, {
      fileName: name,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true, removeComments: true },
    })
    return [name.replace(/\.ts$/, '.js'), outputText]
  }))
  return new Map(entries)
}

/** The client's modules as browser JavaScript, by file name (`index.js`, …). */
export function clientModules (): Promise<ReadonlyMap<string, string>> {
  modules ??= transpileAll()
  return modules
}
