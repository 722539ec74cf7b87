// Child processes of a bench run: one server per variant, one client per
// measurement. Every child is killed by its own pid when the run ends.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('../..', import.meta.url))
const children = new Set<ChildProcess>()

function killAll (): void {
  for (const child of children) child.kill('SIGKILL')
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => { killAll(); process.exit(130) })
}

/** Soft and hard open-file limits of this shell, or undefined where there is no `sh`. */
export function fdLimits (): { soft: number, hard: number } | undefined {
  try {
    const [soft, hard] = execFileSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' }).trim().split('\n')
    const parse = (value: string | undefined): number => value === 'unlimited' ? Infinity : Number(value)
    return { soft: parse(soft), hard: parse(hard) }
  } catch {
    return undefined
  }
}

let raiseTo: number | undefined
/** Start children with their soft open-file limit raised to `limit` (at most the hard limit). */
export function raiseFdLimit (limit: number): void { raiseTo = limit }

let fromSource = false
/**
 * Load the package from src/ (under tsx) instead of dist/ in the processes
 * that use it: our server and the event pipeline.
 */
export function useSource (): void { fromSource = true }

// Measured processes run plain node: only with src/ do they need tsx, whose
// transform wraps every closure in a `__name()` call (CPU per call, and a
// ~250-byte property store per closure that the build does not have).
function nodeChild (args: string[], usesPackage: boolean): ChildProcess {
  const nodeArgs = usesPackage && fromSource ? ['--import', 'tsx', ...args] : args
  const env = { ...process.env, BENCH_LIB: fromSource ? 'src' : 'dist' }
  const child = raiseTo === undefined
    ? spawn(process.execPath, nodeArgs, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn('sh', ['-c', `ulimit -n ${raiseTo} && exec "$0" "$@"`, process.execPath, ...nodeArgs], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.on('exit', () => { children.delete(child) })
  return child
}

export interface Server {
  readonly variant: string
  readonly port: number
  stop (): Promise<void>
}

/** Starts a server variant (`ours` or an anchor) and waits for its `ready <port>` line. */
export async function startServer (variant: string, extraNodeArgs: string[] = []): Promise<Server> {
  // `ours-otel`: our server with fastify-cqrs-stream/otel instrumenting it;
  // `ours-otel-floor`: with the least instrumentation the SDK allows instead.
  const ours = variant === 'ours' || variant.startsWith('ours-otel')
  const script = ours ? ['bench/servers/ours.mjs', ...(variant === 'ours' ? [] : [variant.slice('ours-'.length)])] : ['bench/servers/anchors.mjs', variant]
  const child = nodeChild([...extraNodeArgs, '--expose-gc', ...script], ours)
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
      const match = /ready (\d+)/.exec(stdout)
      if (match !== null) resolve(Number(match[1]))
    })
    child.on('exit', (code) => { reject(new Error(`server ${variant} exited (${String(code)}) before it was ready:\n${stderr}`)) })
  })
  let stopping = false
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`  ! server ${variant} exited (${signal ?? String(code)}) during the case: ${stderr}`)
  })
  return {
    variant,
    port,
    async stop () {
      stopping = true
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    },
  }
}

/** Runs a node script and parses the JSON line it prints last. */
export async function runJson<T> (args: string[], usesPackage = false, timeoutMs = 180_000): Promise<T> {
  const child = nodeChild(args, usesPackage)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const [code, signal] = await once(child, 'exit') as [number | null, NodeJS.Signals | null]
  clearTimeout(timer)
  const last = stdout.trim().split('\n').pop() ?? ''
  if (code !== 0 || !last.startsWith('{')) {
    throw new Error(`${args.join(' ')} failed (${signal ?? String(code)}):\n${stderr}${stdout}`)
  }
  return JSON.parse(last) as T
}
