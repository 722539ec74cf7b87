// A horizontal bar chart of the ratios against their targets, as a
// hand-written SVG string: one row per ratio, the bar green when the target
// holds and red when it misses, the target drawn as a tick on the bar's row.

export interface ChartRow {
  label: string
  value: number
  target: number
  op: '<=' | '>='
  pass: boolean
}

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

const fmt = (value: number, digits = 3): string => Number.isFinite(value) ? value.toFixed(digits) : 'n/a'

export function ratioChart (title: string, subtitle: string, rows: readonly ChartRow[]): string {
  const labelWidth = 330
  const barWidth = 420
  const rowHeight = 26
  const top = 62
  const width = labelWidth + barWidth + 170
  const height = top + rows.length * rowHeight + 40
  const finite = rows.map((r) => r.value).filter(Number.isFinite)
  const scaleMax = Math.min(4, Math.max(2, ...finite.map((v) => v * 1.1), ...rows.map((r) => r.target * 1.2)))
  const x = (value: number): number => labelWidth + Math.min(value, scaleMax) / scaleMax * barWidth
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="12" y="22" font-size="15" font-weight="600">${escape(title)}</text>`)
  out.push(`<text x="12" y="40" fill="#555">${escape(subtitle)}</text>`)
  // Grid: a line at every 0.5 of ratio, and a stronger one at 1 (parity with the anchor).
  for (let v = 0; v <= scaleMax + 1e-9; v += 0.5) {
    const gx = x(v).toFixed(1)
    out.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${top + rows.length * rowHeight}" stroke="${v === 1 ? '#888' : '#e3e3e3'}" stroke-width="1"/>`)
    out.push(`<text x="${gx}" y="${top + rows.length * rowHeight + 16}" text-anchor="middle" fill="#555">${v.toFixed(1)}×</text>`)
  }
  rows.forEach((row, i) => {
    const y = top + i * rowHeight
    const barEnd = Number.isFinite(row.value) ? x(Math.max(0, row.value)) : labelWidth
    const color = row.pass ? '#2e7d32' : '#c62828'
    out.push(`<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end">${escape(row.label)}</text>`)
    out.push(`<rect x="${labelWidth}" y="${y + 4}" width="${(barEnd - labelWidth).toFixed(1)}" height="${rowHeight - 10}" fill="${color}" opacity="0.85"/>`)
    const tx = x(row.target).toFixed(1)
    out.push(`<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowHeight - 3}" stroke="#111" stroke-width="2"/>`)
    const overflow = row.value > scaleMax ? ' ▶' : ''
    // Right of both the bar and the target tick, so neither hides the text.
    const textX = Math.max(barEnd, x(row.target)) + 6
    out.push(`<text x="${textX.toFixed(1)}" y="${y + 15}" fill="${color}">${fmt(row.value)}${overflow} (${row.op === '<=' ? '≤' : '≥'} ${fmt(row.target, 2)} ${row.pass ? 'PASS' : 'MISS'})</text>`)
  })
  out.push(`<text x="12" y="${height - 8}" fill="#555">Bars: our value ÷ the anchor's (medians); black tick: the target. Green: target holds; red: misses.</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
