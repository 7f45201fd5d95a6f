// docs/benchmarks.md: each benchmark owns one section between markers and refreshes only
// that section, so the others' figures and any text outside the markers stay as they were.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCHMARKS_DOC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'benchmarks.md')

const HEADER = `# Benchmarks

Written by the scripts in \`scripts/bench\` (the targets P1–P12 are under "The scenarios"). Each run makes a
throw-away database (\`tessera_bench_<random>\`) and Redis key prefix and removes both at the
end, also on Ctrl-C. Every benchmark runs its baseline in the same run, on the same machine,
with the same load generator, and reports the ratio: absolute times on a 2-core machine
shared by the load generator, PostgreSQL, Redis and the service are noisy, the ratio less so.

\`\`\`sh
npm run bench                       # everything with default parameters, then the summary (about 20 minutes)
npm run bench -- --quick            # small parameters, to see that it works
npx tsx scripts/bench/fanout.ts --sessions 5000 --nodes 2   # one benchmark; --help lists its flags
\`\`\`

Each section between \`<!-- bench:… -->\` markers is replaced by the next run of its benchmark;
text outside them (like the findings below) is kept as it is.
`

export function writeSection(id: string, markdown: string): void {
  const begin = `<!-- bench:${id} -->`
  const end = `<!-- /bench:${id} -->`
  const block = `${begin}\n${markdown.trim()}\n${end}`
  const doc = existsSync(BENCHMARKS_DOC) ? readFileSync(BENCHMARKS_DOC, 'utf8') : HEADER
  const from = doc.indexOf(begin)
  const to = doc.indexOf(end)
  const next = from >= 0 && to > from ? doc.slice(0, from) + block + doc.slice(to + end.length) : `${doc.trimEnd()}\n\n${block}\n`
  writeFileSync(BENCHMARKS_DOC, next)
}
