// Run by `npm run build` after tsc: fails when the tarball `npm pack` would
// make holds anything besides the build output and the package's docs, or
// misses the entry points. Run it in the package root.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const docs = ['README.md', 'CHANGELOG.md', 'LICENSE']
// docs/ ships too: the README's links to it then work in node_modules and on
// the npm page.
const allowed = (path) => path === 'package.json' || docs.includes(path) || /^dist\/.+\.(js|d\.ts)$/.test(path) || /^docs\/[\w.-]+\.(md|svg)$/.test(path) || path === 'sql/outbox.sql'

// --ignore-scripts: no prepack/postpack hooks, so no recursion into build.
const [report] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
}))
const paths = report.files.map((file) => file.path)
const problems = [
  ...paths.filter((path) => !allowed(path)).map((path) => `not allowed in the package: ${path}`),
  ...['dist/index.js', 'dist/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/redis/index.js', 'dist/redis/index.d.ts', 'dist/amqp/index.js', 'dist/amqp/index.d.ts', 'dist/postgres/index.js', 'dist/postgres/index.d.ts', 'dist/otel/index.js', 'dist/otel/index.d.ts', 'sql/outbox.sql', 'package.json']
    .filter((path) => !paths.includes(path)).map((path) => `missing from the package: ${path}`),
  ...docs.filter((path) => existsSync(path) && !paths.includes(path)).map((path) => `missing from the package: ${path}`),
  ...(paths.some((path) => path.startsWith('docs/')) ? [] : ['missing from the package: docs/']),
]
if (problems.length > 0) {
  console.error(`check-pack: ${report.filename}\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
console.log(`check-pack: ${report.filename} holds ${paths.length} files (${report.size} bytes packed), only dist/, docs and sql/outbox.sql`)
