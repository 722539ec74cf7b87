// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per
// function, overall and for this package's own files (src/ or dist/).
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
}
interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface SelfTime {
  name: string
  where: string
  ms: number
  share: number
}

function place (url: string, line: number): string {
  if (url === '') return '(native)'
  const nm = url.lastIndexOf('/node_modules/')
  const own = Math.max(url.lastIndexOf('/src/'), url.lastIndexOf('/dist/'))
  const short = nm !== -1 ? url.slice(nm + 14) : own !== -1 ? url.slice(own + 1) : url.replace(/^.*\//, '')
  return `${short}:${line + 1}`
}

/** Self time of every function in `file`, largest first. */
export function selfTimes (file: string): { totalMs: number, rows: SelfTime[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const micros = new Map<string, { name: string, where: string, us: number }>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)
    const delta = profile.timeDeltas[i] ?? 0
    if (node === undefined) return
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)') return
    total += delta
    const where = place(url, lineNumber)
    const key = `${functionName}@${where}`
    const row = micros.get(key) ?? { name: functionName || '(anonymous)', where, us: 0 }
    row.us += delta
    micros.set(key, row)
  })
  const rows = [...micros.values()]
    .map((r) => ({ name: r.name, where: r.where, ms: r.us / 1000, share: r.us / total }))
    .sort((a, b) => b.ms - a.ms)
  return { totalMs: total / 1000, rows }
}

/** Lines for a report: the top `n` overall and the top `n` in the package. */
export function describeProfile (file: string, n = 12): string[] {
  const { totalMs, rows } = selfTimes(file)
  const line = (r: SelfTime): string => `    ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(6)} ms  ${r.name}  ${r.where}`
  const ours = rows.filter((r) => r.where.startsWith('src/') || r.where.startsWith('dist/'))
  const oursShare = ours.reduce((sum, r) => sum + r.share, 0)
  return [
    `  ${file}: ${totalMs.toFixed(0)} ms sampled (idle excluded); self time in the package: ${(oursShare * 100).toFixed(1)}%`,
    '   top self time, all code:',
    ...rows.slice(0, n).map(line),
    '   top self time in the package (src/ or dist/):',
    ...ours.slice(0, n).map(line),
  ]
}
