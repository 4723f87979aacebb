#!/usr/bin/env node
'use strict'
// Checks the layering of the code (issue 12): no import cycle among the
// modules of src/, each top-level module imports only from layers below
// its own, and the JS entry points use the engine only through lib/engine.js.
//
//   node scripts/check-layers.js         prints the graph, exits 1 on a violation
//
// The Rust layers, bottom to top (a module may use its own layer's
// neighbours only where LAYERS says so, never a higher one):
//   wire, log            bytes on the wire, logging
//   utp, dht, lan, relay the sans-IO protocol cores
//   discovery, io,       topics over DHT + LAN (sans-IO); sockets for the
//   sansio               cores; the cores' public face for Rust users
//   swarm                the engine and its driver
//   api, binding         the Rust API and the Node.js binding
// Within a top-level module, files may use each other, but the file graph
// must have no cycle either. A child using its parent's re-exports counts
// as using the file the item comes from; mod.rs's own `mod` and `pub use`
// lines are not edges.
const fs = require('fs')
const path = require('path')

const REPO = path.join(__dirname, '..')

/** Rank of each top-level module; an import must go to a lower rank. */
const LAYERS = { wire: 0, log: 0, utp: 1, dht: 1, lan: 1, relay: 1, discovery: 2, io: 2, sansio: 2, swarm: 3, api: 4, binding: 4 }

// Every file below `dir` whose name ends with `ext`.
function walk (dir, ext) {
  const out = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...walk(p, ext))
    else if (e.name.endsWith(ext)) out.push(p)
  }
  return out
}

// Source without comments, string and char literals (which could hold
// `crate::` as text).
function code (text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/[^\n]*/g, ' ')
    .replace(/r#*"[\s\S]*?"#*/g, '""')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/'(?:[^'\\\n]|\\[^']{1,9})'/g, "''")
    // Unit tests (a `mod tests` at the end of a file, where `super` means
    // the file itself) are not part of the layering.
    .replace(/#\[cfg\(test\)\]\s*mod\s+\w+\s*\{[\s\S]*$/, '')
}

// Every path a file names from the crate root, as arrays of segments:
// `crate::a::b`, and each leaf of `use crate::{a::{b, c}, d}`.
function cratePaths (src, root = 'crate') {
  const out = []
  const re = new RegExp(`\\b${root}((?:::\\w+)*)(::\\{)?`, 'g')
  let m
  while ((m = re.exec(src))) {
    const head = m[1].split('::').filter(Boolean)
    if (!m[2]) {
      if (head.length) out.push(head)
      continue
    }
    // A brace group: split its items at depth 0, recursing into nested groups.
    let depth = 1
    let i = re.lastIndex
    const start = i
    while (i < src.length && depth) {
      if (src[i] === '{') depth++
      else if (src[i] === '}') depth--
      i++
    }
    for (const leaf of groupLeaves(src.slice(start, i - 1))) out.push([...head, ...leaf])
    re.lastIndex = i
  }
  return out
}

function groupLeaves (body) {
  const items = []
  let depth = 0
  let cur = ''
  for (const ch of body) {
    if (ch === '{') depth++
    if (ch === '}') depth--
    if (ch === ',' && depth === 0) { items.push(cur); cur = '' } else cur += ch
  }
  items.push(cur)
  const out = []
  for (let item of items) {
    item = item.trim()
    if (!item) continue
    const g = item.match(/^((?:\w+::)*)\{([\s\S]*)\}$/)
    if (g) {
      const prefix = g[1].split('::').filter(Boolean)
      for (const leaf of groupLeaves(g[2])) out.push([...prefix, ...leaf])
    } else {
      out.push(item.split(/\s+as\s+/)[0].split('::').map(s => s.trim()).filter(Boolean))
    }
  }
  return out
}

// File id of a source file: "swarm/engine", "dht/mod", "log".
const fileId = (src, f) => path.relative(src, f).replace(/\.rs$/, '')
const topOf = id => id.split('/')[0]

// The file a crate path lands in: the longest existing module prefix
// (`crate::swarm::engine::Swarm` → swarm/engine), following mod.rs
// re-exports (`crate::swarm::Swarm` → swarm/engine, not swarm/mod).
function target (segs, files, reexports, depth = 0) {
  for (let n = segs.length; n >= 1; n--) {
    const id = segs.slice(0, n).join('/')
    if (files.has(id)) return id
    if (files.has(id + '/mod')) {
      const via = n < segs.length && reexports.get(`${id}/${segs[n]}`)
      if (via && depth < 8) return target([...via, ...segs.slice(n + 1)], files, reexports, depth + 1) || id + '/mod'
      return id + '/mod'
    }
  }
  return null
}

// `pub use child::{A, B}` in dir/mod.rs: "dir/A" → [dir, child, A].
function reexportsOf (files) {
  const map = new Map()
  for (const [id, src] of files) {
    if (!id.endsWith('/mod')) continue
    const dir = id.slice(0, -'/mod'.length).split('/')
    const re = /\bpub(?:\([\w\s]+\))?\s+use\s+([^;]+);/g
    let m
    while ((m = re.exec(src))) {
      for (const leaf of groupLeaves(m[1])) {
        let full = leaf
        if (full[0] === 'crate') full = full.slice(1)
        else if (full[0] === 'self') full = [...dir, ...full.slice(1)]
        else full = [...dir, ...full]
        map.set(`${dir.join('/')}/${full[full.length - 1]}`, full)
      }
    }
  }
  return map
}

// `super::x` and `self::x` inside a module's files, resolved to crate paths.
function relativePaths (id, src) {
  const parts = id.split('/')
  const dir = parts[parts.length - 1] === 'mod' ? parts.slice(0, -1) : parts.slice(0, -1)
  const self = parts[parts.length - 1] === 'mod' ? parts.slice(0, -1) : parts
  const out = []
  if (dir.length) for (const rest of cratePaths(src, 'super')) out.push([...dir, ...rest])
  for (const rest of cratePaths(src, 'self')) out.push([...self, ...rest])
  return out
}

function cycles (graph) {
  // Tarjan's strongly connected components; every one with more than a
  // node (or a self-edge) is a cycle.
  let index = 0
  const idx = new Map()
  const low = new Map()
  const stack = []
  const on = new Set()
  const out = []
  const strong = v => {
    idx.set(v, index); low.set(v, index); index++
    stack.push(v); on.add(v)
    for (const w of graph.get(v) || []) {
      if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))) } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)))
    }
    if (low.get(v) === idx.get(v)) {
      const comp = []
      let w
      do { w = stack.pop(); on.delete(w); comp.push(w) } while (w !== v)
      if (comp.length > 1) out.push(comp.sort())
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) strong(v)
  return out
}

function rust (root) {
  const problems = []
  const files = new Map()
  const src = path.join(root, 'src')
  for (const f of walk(src, '.rs')) {
    const id = fileId(src, f)
    if (id === 'lib' || id.startsWith('bin/')) continue
    files.set(id, code(fs.readFileSync(f, 'utf8')))
  }
  const reexports = reexportsOf(files)
  const modules = new Map()
  const fileGraph = new Map()
  for (const [id, src] of files) {
    const top = topOf(id)
    if (!(top in LAYERS)) problems.push(`src/${id}.rs: module ${top} has no layer in scripts/check-layers.js`)
    if (!modules.has(top)) modules.set(top, new Set())
    const edges = new Set()
    for (const segs of [...cratePaths(src), ...relativePaths(id, src)]) {
      const to = target(segs, files, reexports)
      if (!to || to === id) continue
      const toTop = topOf(to)
      if (toTop !== top) {
        modules.get(top).add(toTop)
        if (LAYERS[toTop] >= LAYERS[top]) problems.push(`src/${id}.rs uses ${segs.join('::')}: ${top} (layer ${LAYERS[top]}) must not use ${toTop} (layer ${LAYERS[toTop]})`)
      } else if (!id.endsWith('/mod')) {
        edges.add(to)
      }
    }
    fileGraph.set(id, edges)
  }
  for (const c of cycles(modules)) problems.push(`import cycle among modules: ${c.join(' ↔ ')}`)
  for (const c of cycles(fileGraph)) problems.push(`import cycle among files: ${c.map(f => `src/${f}.rs`).join(' ↔ ')}`)
  return { problems, modules }
}

// JS: the entry points and lib/ reach the native swarm only through
// lib/engine.js, and no entry point calls another's private members.
const ENTRY = ['index.js', 'network.js', 'hyperswarm.js', 'dht.js']
function js (root) {
  const problems = []
  const libFiles = walk(path.join(root, 'lib'), '.js').map(f => path.relative(root, f))
  for (const rel of [...ENTRY, ...libFiles]) {
    if (rel === path.join('lib', 'engine.js')) continue
    const src = fs.readFileSync(path.join(root, rel), 'utf8').replace(/\/\/[^\n]*/g, '')
    src.split('\n').forEach((line, i) => {
      if (/\.native\b/.test(line)) problems.push(`${rel}:${i + 1}: reaches into the engine's native swarm (use lib/engine.js's methods)`)
      if (ENTRY.includes(rel) && /\.network\._\w/.test(line)) problems.push(`${rel}:${i + 1}: calls a private member of the network entry`)
    })
  }
  return problems
}

/** Every layering problem of the tree at `root` (default: this repo). */
function check (root = REPO) {
  const r = rust(root)
  return { problems: [...r.problems, ...js(root)], modules: r.modules }
}

module.exports = { check, cratePaths, code, cycles }

if (require.main === module) {
  const { problems, modules } = check()
  const order = [...modules.keys()].sort((a, b) => LAYERS[a] - LAYERS[b] || a.localeCompare(b))
  for (const m of order) console.log(`${m.padEnd(10)} (layer ${LAYERS[m]}) uses ${[...modules.get(m)].sort().join(', ') || '-'}`)
  for (const p of problems) console.error(p)
  console.log(problems.length ? `${problems.length} layering problem(s)` : 'layering: no cycle, every import goes down')
  process.exit(problems.length ? 1 : 0)
}
