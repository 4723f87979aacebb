'use strict'
// A `node --test` reporter for scripts/test.js: one JSON line per finished
// test (not per suite), with the kind of test it is. The kind comes from
// the name of the test or of any suite around it:
//   `reference: …` runs only the reference packages,
//   `lab: …`       checks the test lab itself (namespaces, NATs, utp-native
//                  against itself),
//   anything else  runs our code.
// scripts/test.js reads the lines back and prints the three counts.

const KINDS = [['reference: ', 'reference'], ['lab: ', 'lab']]

function kindOf (names) {
  for (const name of names) {
    for (const [prefix, kind] of KINDS) if (typeof name === 'string' && name.startsWith(prefix)) return kind
  }
  return 'ours'
}

module.exports = async function * reporter (source) {
  // file → names of the tests open at each nesting level
  const open = new Map()
  for await (const ev of source) {
    const d = ev.data || {}
    if (ev.type === 'test:start') {
      const stack = open.get(d.file) || []
      stack.length = d.nesting
      stack[d.nesting] = d.name
      open.set(d.file, stack)
      continue
    }
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue
    if (d.details && d.details.type === 'suite') continue
    const stack = (open.get(d.file) || []).slice(0, d.nesting)
    const outcome = d.skip !== undefined ? 'skip' : d.todo !== undefined ? 'todo' : ev.type === 'test:pass' ? 'pass' : 'fail'
    yield JSON.stringify({ kind: kindOf([d.name, ...stack]), outcome, name: d.name, file: d.file }) + '\n'
  }
}

module.exports.kindOf = kindOf
